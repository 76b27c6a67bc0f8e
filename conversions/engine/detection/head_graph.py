"""The detection head in the ONNX graph: find the output concat of boxes and scores, and rewrite it int8-safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.detection.head import (
    COORDINATE_CHANNELS,
    PASS_THROUGH_OPS,
    ConcatInput,
    OutputConcat,
    axis_vector,
)
from conversions.engine.errors import ConversionError


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
            axis_vector(np.array([w, h, w, h], np.float32)[inp.start : inp.stop], rank, concat.axis), f"head_coord_max_{i}"
        )
        graph.initializer.append(upper)
        graph.node.append(helper.make_node("Min", [inp.name, upper.name], [f"{inp.name}_capped"], name=f"head_cap_{i}"))
        graph.node.append(helper.make_node("Relu", [f"{inp.name}_capped"], [f"{inp.name}_clipped"], name=f"head_clip_{i}"))
        renamed[inp.name] = f"{inp.name}_clipped"
    clip_note = f"cx, w clipped to 0..{w} and cy, h to 0..{h} (boxes outside the input frame)"
    if mode == "normalize":
        per_channel = np.array([1.0 / w, 1.0 / h, 1.0 / w, 1.0 / h], dtype=np.float32)
        for i, inp in enumerate(coords):
            const = numpy_helper.from_array(axis_vector(per_channel[inp.start : inp.stop], rank, concat.axis), f"head_coord_scale_{i}")
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
