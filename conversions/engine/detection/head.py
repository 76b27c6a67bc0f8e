"""Head-aware quantization: keep a YOLO head's class scores alive under one int8 scale.

A YOLO-style head ends in ``Concat([cx, cy, w, h in pixels (0-640)], [class probabilities (0-1)])``. TFLite
gives a concatenation one scale for all its inputs, so 0-640 coordinates leave the scores a handful of
int8 steps: they collapse to 0 or a constant. Two fixes are applied to the ONNX graph before onnx2tf:

- ``normalize``: multiply the coordinate inputs of that concat by ``1/W, 1/H`` inside the graph (0-1 like
  the scores); the decoder multiplies them back (``HeadPlan.merge``);
- ``split``: drop the concat and emit boxes and scores as two outputs, each with its own scale.

``none`` leaves the graph alone (the naive export, kept to measure against). Which one is the default is
decided by measurement (BENCHMARKS.md, "Detection"). ``range_warnings`` is the general form of the check
for any model: one output tensor whose channels span very different ranges.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.errors import ConversionError

log = logging.getLogger("quantweb.engine")

DEFAULT_HEAD_MODE = "split"
"""What ``auto`` means; see BENCHMARKS.md for the measurement behind it."""
RANGE_RATIO_WARNING = 50.0
"""Warn when one output's widest channel range is this many times its narrowest."""
COORDINATE_CHANNELS = 4
PASS_THROUGH_OPS = ("Identity",)


@dataclass(frozen=True)
class ConcatInput:
    name: str
    start: int
    stop: int
    low: float
    high: float

    @property
    def is_coordinates(self) -> bool:
        return self.stop <= COORDINATE_CHANNELS


@dataclass
class OutputConcat:
    """The ``Concat`` that produces the model's first output, with each input's channel span and range."""

    node_name: str
    output: str
    axis: int
    inputs: list[ConcatInput]

    def describe(self) -> str:
        parts = [f"channels {i.start}-{i.stop - 1}: {i.low:.3g}..{i.high:.3g}" for i in self.inputs]
        return f"Concat {self.node_name!r} on axis {self.axis} ({'; '.join(parts)})"


@dataclass
class HeadPlan:
    """What was done to the model's head and how to read the exported outputs back as ``[B, 4 + nc, N]``."""

    task: str
    mode: str = "none"
    onnx_path: Path | None = None
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    input_size: tuple[int, int] = (0, 0)
    """(H, W) of the model input."""
    channel_axis: int = 1
    split_at: tuple[int, ...] = (COORDINATE_CHANNELS,)
    """``split``: channel boundaries between the outputs (boxes | scores, or boxes | scores | extras)."""
    output_shape: tuple[int, ...] = ()
    """The original first output's shape (PyTorch)."""
    exported_shapes: list[tuple[int, ...]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    channel_ranges: list[dict[str, Any]] = field(default_factory=list)
    loaded: Any = None
    """The ``LoadedModel`` the rest of the pipeline uses: its module computes the exported outputs in float."""
    original_module: Any = None
    batch_step: int = 16

    @property
    def coordinate_scale(self) -> tuple[float, float, float, float]:
        """Exported coordinates times this are input pixels (``normalize``); ones otherwise."""
        h, w = self.input_size
        return (float(w), float(h), float(w), float(h)) if self.mode == "normalize" else (1.0, 1.0, 1.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "mode": self.mode,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "input_size": list(self.input_size),
            "channel_axis": self.channel_axis,
            "split_at": list(self.split_at) if self.mode == "split" else None,
            "output_shape": list(self.output_shape),
            "exported_shapes": [list(s) for s in self.exported_shapes],
            "coordinate_scale": list(self.coordinate_scale),
            "changes": list(self.changes),
            "channel_ranges": self.channel_ranges,
        }

    # ---------------------------------------------------------------------------- output transforms

    def to_exported(self, output: Any) -> list[Any]:
        """The original first output (numpy or torch) -> what the rewritten graph outputs."""
        if self.mode == "none":
            return [output]
        coords = self._clipped(take_channels(output, self.channel_axis, 0, COORDINATE_CHANNELS))
        if self.mode == "split":
            bounds = [COORDINATE_CHANNELS, *self.split_at[1:], None]
            return [coords, *(take_channels(output, self.channel_axis, a, b) for a, b in zip(bounds, bounds[1:]))]
        rest = take_channels(output, self.channel_axis, COORDINATE_CHANNELS, None)
        scale = axis_vector(1.0 / np.asarray(self.coordinate_scale), output.ndim, self.channel_axis)
        if not isinstance(output, np.ndarray):
            import torch

            return [torch.cat([coords * torch.from_numpy(scale).to(coords.dtype), rest], self.channel_axis)]
        return [np.concatenate([coords * scale.astype(coords.dtype), rest], self.channel_axis)]

    def _clipped(self, coords: Any) -> Any:
        """cx, w into [0, W] and cy, h into [0, H], as the rewritten graph does before quantizing."""
        h, w = self.input_size
        upper = axis_vector(np.array([w, h, w, h], dtype=np.float32), coords.ndim, self.channel_axis)
        if isinstance(coords, np.ndarray):
            return np.clip(coords, 0, upper.astype(coords.dtype))
        import torch

        return torch.minimum(coords, torch.from_numpy(upper).to(coords.dtype)).clamp(min=0)

    def merge(self, outputs: list[np.ndarray]) -> np.ndarray:
        """Exported outputs (from TFLite, any order, possibly channels-last) -> ``[B, 4 + nc (+ extras), N]`` px."""
        parts = _match_shapes(outputs, self.exported_shapes)
        if self.mode == "split":
            merged = np.concatenate(parts, axis=self.channel_axis)
        else:
            merged = parts[0].astype(np.float32).copy()
            if self.mode == "normalize":
                scale = axis_vector(np.asarray(self.coordinate_scale), merged.ndim, self.channel_axis)
                idx = [slice(None)] * merged.ndim
                idx[self.channel_axis] = slice(0, COORDINATE_CHANNELS)
                merged[tuple(idx)] = merged[tuple(idx)] * scale
        return merged if self.channel_axis == 1 else np.swapaxes(merged, 1, 2)

    def canonical(self, output: np.ndarray) -> np.ndarray:
        """The original first output -> ``[B, C, N]`` (channels on axis 1)."""
        output = np.asarray(output, dtype=np.float32)
        return output if self.channel_axis == 1 else np.swapaxes(output, 1, 2)


def take_channels(x: Any, axis: int, start: int, stop: int | None) -> Any:
    idx = [slice(None)] * x.ndim
    idx[axis] = slice(start, stop)
    return x[tuple(idx)]


def axis_vector(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = len(values)
    return np.asarray(values, dtype=np.float32).reshape(shape)


def _match_shapes(outputs: list[np.ndarray], shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Puts outputs in the order of ``shapes``, transposing a channels-last 3-D output back when needed."""
    pool = list(outputs)
    found: list[np.ndarray] = []
    for shape in shapes:
        for i, out in enumerate(pool):
            batchless = tuple(out.shape[1:])
            if batchless == tuple(shape[1:]):
                found.append(pool.pop(i))
                break
            if out.ndim == 3 and batchless == tuple(shape[1:][::-1]):
                found.append(np.swapaxes(pool.pop(i), 1, 2))
                break
        else:
            raise ConversionError(
                f"the exported model's outputs {[list(o.shape) for o in outputs]} do not match the head's "
                f"expected shapes {[list(s) for s in shapes]}; the detection head could not be read back."
            )
    return found


# ---------------------------------------------------------------------------------- range check


def channel_axis_of(shape: tuple[int, ...]) -> int | None:
    """Where the channels of an output are: axis 1, or the last axis of a ``[B, N, C]`` with N > C."""
    if len(shape) < 2:
        return None
    if len(shape) == 3 and shape[2] < shape[1]:
        return 2
    return 1


def channel_ranges(output: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) per channel over all samples and positions."""
    moved = np.moveaxis(np.asarray(output, dtype=np.float64), axis, 0).reshape(output.shape[axis], -1)
    return moved.min(axis=1), moved.max(axis=1)


def range_warnings(outputs: dict[str, np.ndarray], ratio: float = RANGE_RATIO_WARNING) -> tuple[list[str], list[dict]]:
    """One warning per output whose channel ranges differ by more than ``ratio``, and the ranges themselves."""
    warnings: list[str] = []
    report: list[dict[str, Any]] = []
    for name, out in outputs.items():
        axis = channel_axis_of(out.shape)
        if axis is None or out.shape[axis] < 2:
            continue
        low, high = channel_ranges(out, axis)
        spans = high - low
        live = spans > max(float(spans.max()) * 1e-6, 1e-12)
        if live.sum() < 2:
            continue
        widest, narrowest = int(np.argmax(np.where(live, spans, -np.inf))), int(np.argmin(np.where(live, spans, np.inf)))
        found = float(spans[widest] / spans[narrowest])
        report.append({
            "output": name, "shape": list(out.shape), "channel_axis": axis, "ratio": round(found, 1),
            "widest": {"channel": widest, "min": float(low[widest]), "max": float(high[widest])},
            "narrowest": {"channel": narrowest, "min": float(low[narrowest]), "max": float(high[narrowest])},
        })
        if found > ratio:
            warnings.append(
                f"output {name!r} {list(out.shape)}: its channels span very different ranges (channel {widest}: "
                f"{low[widest]:.3g}..{high[widest]:.3g}, channel {narrowest}: {low[narrowest]:.3g}..{high[narrowest]:.3g}, "
                f"{found:.0f}x apart). int8 gives the whole tensor one scale, so the narrow channels keep only a few "
                "levels. For a YOLO-style detector set the task to detect (coordinates are normalised before the concat); "
                "otherwise return such channels as separate outputs, or check the int8 result closely."
            )
    return warnings, report


# ------------------------------------------------------------------------------- graph analysis


# -------------------------------------------------------------------------------- graph rewrite


def validate_head_shape(shape: tuple[int, ...], source: str) -> int:
    """The channel axis of a ``[B, 4 + nc, N]`` (or ``[B, N, 4 + nc]``) prediction, or a clear error."""
    axis = channel_axis_of(shape)
    if len(shape) != 3 or axis is None or shape[axis] < COORDINATE_CHANNELS + 1:
        raise ConversionError(
            f"{source}: {{task}} detect expects the model to return YOLO-style predictions [batch, 4 + classes, "
            f"anchors] (boxes as cx, cy, w, h in input pixels, then class probabilities), but its first output "
            f"has shape {list(shape)}. Pass {{task}} classify, or wrap the model so it returns that tensor."
        )
    return axis


def first_samples(data: Any, count: int = 16) -> np.ndarray:
    """Up to ``count`` calibration samples (NCHW), or the evaluation inputs when there is no calibration set."""
    gen = getattr(data, "generator", None)
    if gen is not None and len(gen):
        stream = iter(gen)
        try:
            taken = list(itertools.islice(stream, count))
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        if taken:
            return np.stack(taken).astype(np.float32)
    return np.asarray(data.evaluation.inputs_nchw[:count], dtype=np.float32)
