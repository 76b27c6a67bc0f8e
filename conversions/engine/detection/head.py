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

from ..errors import ConversionError

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
        coords = self._clipped(_take(output, self.channel_axis, 0, COORDINATE_CHANNELS))
        if self.mode == "split":
            bounds = [COORDINATE_CHANNELS, *self.split_at[1:], None]
            return [coords, *(_take(output, self.channel_axis, a, b) for a, b in zip(bounds, bounds[1:]))]
        rest = _take(output, self.channel_axis, COORDINATE_CHANNELS, None)
        scale = _axis_vector(1.0 / np.asarray(self.coordinate_scale), output.ndim, self.channel_axis)
        if not isinstance(output, np.ndarray):
            import torch

            return [torch.cat([coords * torch.from_numpy(scale).to(coords.dtype), rest], self.channel_axis)]
        return [np.concatenate([coords * scale.astype(coords.dtype), rest], self.channel_axis)]

    def _clipped(self, coords: Any) -> Any:
        """cx, w into [0, W] and cy, h into [0, H], as the rewritten graph does before quantizing."""
        h, w = self.input_size
        upper = _axis_vector(np.array([w, h, w, h], dtype=np.float32), coords.ndim, self.channel_axis)
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
                scale = _axis_vector(np.asarray(self.coordinate_scale), merged.ndim, self.channel_axis)
                idx = [slice(None)] * merged.ndim
                idx[self.channel_axis] = slice(0, COORDINATE_CHANNELS)
                merged[tuple(idx)] = merged[tuple(idx)] * scale
        return merged if self.channel_axis == 1 else np.swapaxes(merged, 1, 2)

    def canonical(self, output: np.ndarray) -> np.ndarray:
        """The original first output -> ``[B, C, N]`` (channels on axis 1)."""
        output = np.asarray(output, dtype=np.float32)
        return output if self.channel_axis == 1 else np.swapaxes(output, 1, 2)


def _take(x: Any, axis: int, start: int, stop: int | None) -> Any:
    idx = [slice(None)] * x.ndim
    idx[axis] = slice(start, stop)
    return x[tuple(idx)]


def _axis_vector(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
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
                "levels. For a YOLO-style detector pass --task detect (coordinates are normalised before the concat); "
                "otherwise return such channels as separate outputs, or check the int8 result closely."
            )
    return warnings, report


# ------------------------------------------------------------------------------- graph analysis


def find_output_concat(onnx_path: Path, samples: np.ndarray) -> tuple[OutputConcat | None, str]:
    """The ``Concat`` producing the first output (through Identity ops), with measured input ranges."""
    import onnx

    model = onnx.load(str(onnx_path))
    node, why = _output_concat_node(model)
    if node is None:
        return None, why
    axis = _concat_axis(model, node)
    names = _flattened_inputs(model, node, axis)
    values = _intermediate_values(model, names, samples)
    inputs, start = [], 0
    for inp, value in zip(names, values):
        stop = start + value.shape[axis]
        inputs.append(ConcatInput(inp, start, stop, float(value.min()), float(value.max())))
        start = stop
    return OutputConcat(node.name or node.output[0], node.output[0], axis, inputs), ""


def _output_concat_node(model: Any) -> tuple[Any, str]:
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers.get(model.graph.output[0].name)
    while node is not None and node.op_type in PASS_THROUGH_OPS:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Concat":
        found = node.op_type if node is not None else "a graph input"
        return None, f"the first output is produced by {found}, not by a Concat of boxes and scores"
    return node, ""


def _concat_axis(model: Any, node: Any) -> int:
    rank = len(model.graph.output[0].type.tensor_type.shape.dim)
    axis = next(a.i for a in node.attribute if a.name == "axis")
    return axis + rank if axis < 0 else axis


def _flattened_inputs(model: Any, node: Any, axis: int) -> list[str]:
    """The concat's inputs, with an inner Concat on the same axis (used only here) opened up: a segmentation
    or pose head concatenates the detection output (itself boxes + scores) with its extras."""
    producers = {out: n for n in model.graph.node for out in n.output}
    uses: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    outputs = {o.name for o in model.graph.output}
    names: list[str] = []
    for name in node.input:
        inner = producers.get(name)
        if inner is not None and inner.op_type == "Concat" and uses.get(name) == 1 and name not in outputs \
                and _concat_axis(model, inner) == axis:
            names.extend(inner.input)
        else:
            names.append(name)
    return names


def _intermediate_values(model: Any, names: list[str], samples: np.ndarray) -> list[np.ndarray]:
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    runs = [session.run(names, {feed: samples[i : i + 1]}) for i in range(len(samples))]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(names))]


# -------------------------------------------------------------------------------- graph rewrite


def split_points(concat: OutputConcat, num_classes: int) -> tuple[int, ...]:
    """Boxes | scores, plus | extras (mask coefficients, keypoints) when an input boundary allows it."""
    end = COORDINATE_CHANNELS + num_classes
    has_extras = concat.inputs[-1].stop > end
    return (COORDINATE_CHANNELS, end) if has_extras and any(i.stop == end for i in concat.inputs) else (COORDINATE_CHANNELS,)


def rewrite_head(
    onnx_path: Path,
    concat: OutputConcat,
    mode: str,
    input_size: tuple[int, int],
    target: Path,
    split_at: tuple[int, ...] = (COORDINATE_CHANNELS,),
) -> list[str]:
    """Writes the int8-safe graph to ``target``; returns what was changed, one sentence each."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    node = next(n for n in graph.node if n.output and n.output[0] == concat.output)
    flat = [i.name for i in concat.inputs]
    if list(node.input) != flat:  # drop the inner concat(s) that were opened up
        opened = set(node.input) - set(flat)
        for inner in [n for n in graph.node if n.output and n.output[0] in opened]:
            graph.node.remove(inner)
        node.input[:] = flat
    coords = [i for i in concat.inputs if i.is_coordinates]
    h, w = input_size
    rank = len(graph.output[0].type.tensor_type.shape.dim)
    renamed = {}
    for i, inp in enumerate(coords):
        # Boxes far outside the frame (low-score anchors) would otherwise set the int8 range of every box.
        upper = numpy_helper.from_array(
            _axis_vector(np.array([w, h, w, h], np.float32)[inp.start : inp.stop], rank, concat.axis), f"head_coord_max_{i}"
        )
        graph.initializer.append(upper)
        graph.node.append(helper.make_node("Min", [inp.name, upper.name], [f"{inp.name}_capped"], name=f"head_cap_{i}"))
        graph.node.append(helper.make_node("Relu", [f"{inp.name}_capped"], [f"{inp.name}_clipped"], name=f"head_clip_{i}"))
        renamed[inp.name] = f"{inp.name}_clipped"
    clip_note = f"cx, w clipped to 0..{w} and cy, h to 0..{h} (boxes outside the input frame)"
    if mode == "normalize":
        per_channel = np.array([1.0 / w, 1.0 / h, 1.0 / w, 1.0 / h], dtype=np.float32)
        for i, inp in enumerate(coords):
            const = numpy_helper.from_array(_axis_vector(per_channel[inp.start : inp.stop], rank, concat.axis), f"head_coord_scale_{i}")
            graph.initializer.append(const)
            scaled = f"{inp.name}_normalised"
            graph.node.append(helper.make_node("Mul", [renamed[inp.name], const.name], [scaled], name=f"head_normalise_{i}"))
            renamed[inp.name] = scaled
        node.input[:] = [renamed.get(n, n) for n in node.input]
        _topological_sort(graph)
        changes = [
            f"{concat.describe()}: {clip_note}, then multiplied by 1/{w} (x, w) and 1/{h} (y, h) before the concat, "
            "so boxes and scores share one 0-1 int8 scale; the decoder multiplies them back"
        ]
    else:
        out_info = graph.output[0]
        graph.node.remove(node)
        made = []
        bounds = [0, *split_at, concat.inputs[-1].stop]
        labels = ("boxes", "scores", "extras")
        groups = [[i for i in concat.inputs if a <= i.start and i.stop <= b] for a, b in zip(bounds, bounds[1:])]
        for label, group in zip(labels, groups):
            op = "Identity" if len(group) == 1 else "Concat"
            attrs = {} if op == "Identity" else {"axis": concat.axis}
            names = [renamed.get(g.name, g.name) for g in group]
            graph.node.append(helper.make_node(op, names, [label], name=f"head_{label}", **attrs))
            made.append(onnx.ValueInfoProto(name=label))
        others = [o for o in graph.output if o.name != out_info.name]
        del graph.output[:]
        graph.output.extend(made + others)
        _topological_sort(graph)
        parts = ", ".join(f"{label} (channels {a}-{b - 1})" for label, a, b in zip(labels, bounds, bounds[1:]))
        changes = [f"{concat.describe()}: removed; {parts} are separate outputs, each with its own int8 scale; {clip_note}"]
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return changes


def _topological_sort(graph: Any) -> None:
    """ONNX wants nodes in dependency order; new nodes were appended at the end."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    pending = list(graph.node)
    ordered = []
    while pending:
        progressed = False
        for node in list(pending):
            if all(not i or i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
                pending.remove(node)
                progressed = True
        if not progressed:
            raise ConversionError(f"the rewritten head graph has a cycle or a missing input near {pending[0].name!r}")
    del graph.node[:]
    graph.node.extend(ordered)


def validate_head_shape(shape: tuple[int, ...], source: str) -> int:
    """The channel axis of a ``[B, 4 + nc, N]`` (or ``[B, N, 4 + nc]``) prediction, or a clear error."""
    axis = channel_axis_of(shape)
    if len(shape) != 3 or axis is None or shape[axis] < COORDINATE_CHANNELS + 1:
        raise ConversionError(
            f"{source}: --task detect expects the model to return YOLO-style predictions [batch, 4 + classes, "
            f"anchors] (boxes as cx, cy, w, h in input pixels, then class probabilities), but its first output "
            f"has shape {list(shape)}. Pass --task classify, or wrap the model so it returns that tensor."
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
