"""The data stage: a dataset folder -> calibration stream and held-out inputs (see ``conversions.engine``)."""
