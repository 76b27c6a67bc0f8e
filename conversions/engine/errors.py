"""Errors the engine raises for bad input: one sentence each on what, where and what to do next.

The engine does not know whether a person typed a flag, filled a form or called the API, so a message names
the inputs it talks about as ``{field}`` placeholders (the ``ExportConfig`` input names in ``FIELD_NAMES``)
and ``field`` says which input is at fault. ``str(err)`` words them neutrally; the CLI renders them as its
flags and the portal as its form labels (``err.render(names)``), and a form puts the error on that field.
"""

from __future__ import annotations

import re
from typing import Mapping

FIELD_NAMES: dict[str, str] = {
    "checkpoint": "the checkpoint file",
    "model": "the architecture",
    "model_kwargs": "the architecture's keyword arguments",
    "input_shape": "the input shape",
    "input_size": "the input size",
    "trust_checkpoint": "a staff member's trust in the checkpoint",
    "dataset_dir": "the dataset",
    "dataset_type": "the dataset type",
    "split": "the split",
    "num_calib_samples": "the number of calibration images",
    "num_eval_samples": "the number of held-out images",
    "seed": "the sampling seed",
    "num_workers": "the number of decode processes",
    "preprocess": "the preprocessing",
    "mean": "the mean",
    "std": "the std",
    "scale": "the pixel scale",
    "resize": "the resize",
    "crop": "the crop",
    "interpolation": "the interpolation",
    "labels_file": "the labels file",
    "variants": "the variants",
    "dynamic_variant": "the dynamic variant",
    "io_type": "the int8 input/output type",
    "output": "the output path",
    "output_dir": "the output folder",
    "force": "permission to replace existing outputs",
    "formats": "the output formats",
    "latency_runs": "the number of timed runs",
    "latency_threads": "the thread counts to time",
    "task": "the task",
    "detect_head": "the detection head mode",
    "calibration_method": "the activation-range method",
    "max_drop": "the accuracy budget",
    "max_fallback": "the float-fallback limit",
    "bias_correction": "bias correction",
}
"""How each input is called where no front-end renames it (scripts, logs)."""

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render(template: str, names: Mapping[str, str] | None = None) -> str:
    """``template`` with each ``{field}`` worded by ``names`` (falling back to ``FIELD_NAMES``)."""
    words = {**FIELD_NAMES, **(names or {})}
    return _PLACEHOLDER.sub(lambda m: words.get(m.group(1), m.group(0)), template)


class QuantwebError(Exception):
    """A user-facing failure. ``str(err)`` is shown as-is in a script; the CLI and the portal ``render`` it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.template = message
        first = _PLACEHOLDER.search(message)
        self.field = field or (first.group(1) if first and first.group(1) in FIELD_NAMES else None)
        """The input at fault (a key of ``FIELD_NAMES``): the first one the message names, unless given."""

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return render(self.template, names)

    def __str__(self) -> str:
        return self.render()


class ConfigError(QuantwebError, ValueError):
    """A setting is out of range or unknown."""


class CheckpointError(QuantwebError):
    """The checkpoint file or the architecture that goes with it cannot be loaded."""


class DatasetError(QuantwebError):
    """The dataset folder cannot give usable images."""


class ConversionError(QuantwebError):
    """Every conversion route failed; the message names the failing op and what to try."""


class OutputExistsError(QuantwebError):
    """An output file exists and ``--force`` was not given."""


_FOLDERS = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"<>()\[\]]+/)+")
"""The folder part of an absolute path (``/srv/var/media/datasets/x-1/``), not of a URL or a relative path."""


def hide_folders(text: str) -> str:
    """``text`` with each absolute path's folders replaced by ``…/`` (the file name stays): for what leaves the
    server (pages for non-staff users, a shipped file's metadata) and should show no server layout."""
    return _FOLDERS.sub("…/", str(text))
