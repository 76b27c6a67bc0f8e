"""Checkpoint + architecture -> an eval-mode nn.Module (see ``conversions.engine`` for the map)."""
