"""Errors the engine raises for bad input: one sentence each on what, where and what to do next."""


class QuantwebError(Exception):
    """A user-facing failure. ``str(err)`` is shown as-is on the terminal and the run page."""


class CheckpointError(QuantwebError):
    """The checkpoint file or the architecture that goes with it cannot be loaded."""


class DatasetError(QuantwebError):
    """The dataset folder cannot give usable images."""


class ConversionError(QuantwebError):
    """Every conversion route failed; the message names the failing op and what to try."""


class OutputExistsError(QuantwebError):
    """An output file exists and ``--force`` was not given."""
