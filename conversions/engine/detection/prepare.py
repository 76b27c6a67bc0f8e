"""The two detection steps before conversion: decide the task, then make the head int8-safe.

``resolve_task`` runs right after the model is loaded (so calibration uses letterbox for a detector);
``prepare_head`` runs on the exported ONNX file and returns the ``HeadPlan`` the rest of the pipeline reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from conversions.engine.detection.head import (
    COORDINATE_CHANNELS,
    DEFAULT_HEAD_MODE,
    HeadPlan,
    first_samples,
    range_warnings,
    validate_head_shape,
)
from conversions.engine.detection.head_graph import (
    find_output_concat,
    rewrite_head,
    split_points,
)
from conversions.engine.errors import ConversionError
from conversions.engine.progress import NullProgress, Progress


def resolve_task(config: Any, loaded: Any) -> str:
    """``classify`` or ``detect``: as asked, else detect for an Ultralytics model, or for a YOLO dataset when
    the model's output looks like YOLO predictions. A detector calibrates with letterbox (``yolo``)."""
    task = getattr(config, "task", "auto")
    if task == "auto":
        task = "detect" if _looks_like_detection(config, loaded) else "classify"
    if task == "detect" and loaded.preprocess_hint is None:
        loaded.preprocess_hint = "yolo"
    return task


def _looks_like_detection(config: Any, loaded: Any) -> bool:
    if loaded.route == "ultralytics":
        return True
    if not config.data.dataset_dir:
        return False
    from conversions.engine.data.layouts import detect_dataset

    structure = detect_dataset(config.data.dataset_dir, config.data.dataset_type, config.data.split)
    if structure.layout != "yolo":
        return False
    shape = _output_shape(loaded.module, loaded.input_shape)
    return len(shape) == 3 and max(shape[1], shape[2]) > COORDINATE_CHANNELS and min(shape[1], shape[2]) > COORDINATE_CHANNELS


def _output_shape(module: Any, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        out = module(torch.zeros(input_shape))
    out = out[0] if isinstance(out, (tuple, list)) else out
    return tuple(out.shape)


def prepare_head(
    task: str,
    config: Any,
    loaded: Any,
    data: Any,
    onnx_path: Path,
    progress: Progress | None = None,
) -> HeadPlan:
    """Checks output channel ranges (any task); for ``detect`` rewrites the head per ``config.detect_head``."""
    progress = progress or NullProgress()
    samples = first_samples(data)
    step = batch_step(loaded)
    outputs = forward(loaded.module, samples, step)
    named = {f"output_{i}" if len(outputs) > 1 else "output": o for i, o in enumerate(outputs)}
    warnings, ranges = range_warnings(named)
    plan = HeadPlan(task=task, onnx_path=onnx_path, channel_ranges=ranges, loaded=loaded, original_module=loaded.module,
                    batch_step=step)
    if task != "detect":
        plan.warnings = warnings
        return plan

    first = outputs[0]
    plan.output_shape = (1, *first.shape[1:])
    plan.channel_axis = validate_head_shape(plan.output_shape, config.model.checkpoint or config.model.model or "model")
    plan.input_size = (int(loaded.input_shape[2]), int(loaded.input_shape[3]))
    plan.class_names = _class_names(loaded, data)
    channels = plan.output_shape[plan.channel_axis] - COORDINATE_CHANNELS
    plan.num_classes = len(plan.class_names) if 0 < len(plan.class_names) <= channels else channels
    mode = getattr(config, "detect_head", "auto")
    mode = DEFAULT_HEAD_MODE if mode == "auto" else mode
    plan.exported_shapes = [plan.output_shape]
    if mode == "none":
        plan.warnings = warnings
        plan.changes = ["head left as exported (detection head mode: none): boxes and scores share one int8 scale"]
        return plan

    concat, why = find_output_concat(onnx_path, samples)
    coords = [i for i in concat.inputs if i.is_coordinates] if concat else []
    if concat is not None and (concat.axis != plan.channel_axis or sum(i.stop - i.start for i in coords) != COORDINATE_CHANNELS):
        why = f"{concat.describe()} does not put the 4 box coordinates in inputs of their own"
        concat = None
    if concat is None:
        plan.warnings = warnings + [f"detection head left unchanged: {why}; int8 scores may collapse"]
        plan.changes = [f"nothing changed: {why}"]
        return plan

    target = onnx_path.with_name(onnx_path.stem + f"_head_{mode}.onnx")
    plan.mode = mode
    plan.split_at = split_points(concat, plan.num_classes)
    plan.changes = rewrite_head(onnx_path, concat, mode, plan.input_size, target, plan.split_at)
    plan.onnx_path = target
    plan.exported_shapes = [(1, *o.shape[1:]) for o in plan.to_exported(first)]
    _check_rewrite(plan, target, samples, first)
    plan.loaded = dataclasses.replace(loaded, module=ExportedHead(loaded.module, plan).eval())
    for line in plan.changes:
        progress.log(f"detection head: {line}")
    return plan


def batch_step(loaded: Any) -> int:
    """How many samples one forward call may take: an exported program keeps its traced batch size."""
    return 1 if loaded.route == "exported_program" else 16


def forward(module: Any, inputs: np.ndarray, step: int = 16) -> list[np.ndarray]:
    """Every output of ``module`` on ``inputs`` (NCHW), run ``step`` samples at a time."""
    chunks = []
    with torch.no_grad():
        for i in range(0, len(inputs), step):
            out = module(torch.from_numpy(np.ascontiguousarray(inputs[i : i + step])))
            chunks.append([o.detach().numpy() for o in (out if isinstance(out, (tuple, list)) else [out])])
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]


def _class_names(loaded: Any, data: Any) -> list[str]:
    names = getattr(loaded.module, "names", None)
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    gen = getattr(data, "generator", None)
    structure = getattr(gen, "structure", None)
    return list(structure.classes) if structure is not None and structure.layout == "yolo" else []


def _check_rewrite(plan: HeadPlan, target: Path, samples: np.ndarray, reference: np.ndarray) -> None:
    """The rewritten graph must compute exactly the planned transform of the original output."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    got = [session.run(None, {feed: samples[i : i + 1]}) for i in range(min(2, len(samples)))]
    for k, expected in enumerate(plan.to_exported(reference[: len(got)])):
        found = np.concatenate([g[k] for g in got])
        if found.shape != expected.shape or not np.allclose(
            found, expected, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(expected).max()))
        ):
            raise ConversionError(
                f"the {plan.mode} rewrite of the detection head does not compute the planned outputs (output {k}: "
                f"shape {list(found.shape)} vs {list(expected.shape)}); rerun with {{detect_head}} none and report the model."
            )


class ExportedHead(nn.Module):
    """Computes, in float, what the rewritten graph outputs: the PyTorch reference for verification."""

    def __init__(self, module: nn.Module, plan: HeadPlan) -> None:
        super().__init__()
        self.inner = module
        self.plan = plan

    def forward(self, x: torch.Tensor) -> Any:
        out = self.inner(x)
        first = out[0] if isinstance(out, (tuple, list)) else out
        parts = self.plan.to_exported(first)
        return parts[0] if len(parts) == 1 else tuple(parts)
