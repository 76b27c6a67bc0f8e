"""The int8 model a run ships and how it was made (see ``conversions.engine`` for the map)."""
