"""Every variant verified against PyTorch (see ``conversions.engine`` for the map)."""
