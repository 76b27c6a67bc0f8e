"""Per-layer error of a quantized ``.tflite`` model against its float twin, with PyTorch module names.

Both models run in the interpreter with every intermediate tensor kept (no XNNPACK delegate, which would
hide them); every op output that exists in both models by name is compared on the same calibration-like
samples. The float side is the float32 model of the same graph (or the calibrated model, which is that
float model with recorded ranges), so names match one to one.

Names: onnx2tf 1.29 calls its TF ops ``tf.nn.convolution_6`` etc., so the ONNX node names (which carry the
PyTorch module path, ``/_blocks.2/_depthwise_conv/Conv``) are not in the ``.tflite``. They are recovered by
value: ONNX Runtime runs the route's ONNX graph with every intermediate exposed, and each TFLite tensor is
matched to the ONNX value with the same size and the same order-free moments (min, max, mean, RMS, ...: so
NCHW/NHWC does not matter). A fused
conv+bias+ReLU matches the ONNX ReLU output; its module is the nearest scoped producer (``spiky``).

The result is a ``LayerErrors``: one ``LayerError`` per op in execution order, and the ops ordered by damage.
``added_noise_db`` is how much worse the op's output is than the worst of its inputs: where error enters.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.int8.module_names import module_names
from conversions.engine.int8.tflite_graph import (
    BOUNDARY_OPS,
    FLOAT_DTYPES,
    dequantized,
    feed,
    pair_models,
)
from conversions.engine.report.int8_results import LayerError, LayerErrors

log = logging.getLogger("quantweb.engine")


def _accumulate(
    ref: np.ndarray,
    qm: Any,
    detail: dict[str, Any],
    qi: int,
    signal: dict[int, float],
    noise: dict[int, float],
    lo: dict[int, float],
    hi: dict[int, float],
) -> None:
    """Adds one sample's signal and noise of one tensor. ``ref`` is a view into the float interpreter's memory
    (no copy: ViT-B/16 keeps ~1 GB of tensors per image), gone when this returns, before the next ``invoke``;
    sums are dot products in float32, one pass each."""
    out = dequantized(qm, detail, np.float32)
    if out.shape != ref.shape:
        return
    flat = ref.ravel()
    diff = flat - out.ravel()
    signal[qi] += float(np.dot(flat, flat))
    noise[qi] += float(np.dot(diff, diff))
    lo[qi] = min(lo[qi], float(flat.min()))
    hi[qi] = max(hi[qi], float(flat.max()))


def layer_errors(
    float_model: bytes,
    quant_model: bytes,
    samples: np.ndarray,
    onnx_path: Path | None = None,
    input_layout: str = "NHWC",
    source: str = "calibration images",
) -> LayerErrors:
    """Compares every op output the two models share by name on ``samples`` (batch-1 rows, model layout)."""
    fl, qm, f_tensors, q_tensors, ops, ref_name = pair_models(float_model, quant_model)

    signal: dict[int, float] = defaultdict(float)
    noise: dict[int, float] = defaultdict(float)
    lo: dict[int, float] = defaultdict(lambda: math.inf)
    hi: dict[int, float] = defaultdict(lambda: -math.inf)
    for x in samples:
        x = x[None] if x.ndim == len(fl.get_input_details()[0]["shape"]) - 1 else x
        feed(fl, x)
        fl.invoke()
        feed(qm, x)
        qm.invoke()
        for qi, name in ref_name.items():
            _accumulate(fl.tensor(f_tensors[name]["index"])(), qm, q_tensors[qi], qi, signal, noise, lo, hi)

    def sqnr(i: int) -> float | None:
        if i not in signal:
            return None
        return 200.0 if noise[i] <= 0 else float(np.clip(10 * np.log10(max(signal[i], 1e-30) / noise[i]), -100, 200))

    names = module_names(float_model, onnx_path, samples[:1], input_layout) if onnx_path else {}
    compute = [op for op in ops if op.op not in BOUNDARY_OPS and op.output in signal]
    total_params = sum(op.params for op in compute) or 1
    total_macs = sum(op.macs for op in compute) or 1
    rows = []
    for op in compute:
        t = q_tensors[op.output]
        scale, zero = t["quantization"]
        out_sqnr = sqnr(op.output)
        in_sqnrs = [s for s in (sqnr(i) for i in op.inputs) if s is not None]
        in_sqnr = min(in_sqnrs) if in_sqnrs else None
        mapped = names.get(ref_name.get(op.output, op.name), {})
        rows.append(
            LayerError(
                depth=len(rows),
                op=op.op,
                name=ref_name.get(op.output, op.name),
                label=mapped.get("module") or short_label(op.name),
                module=mapped.get("module"),
                onnx_node=mapped.get("onnx_node"),
                sqnr_db=_r(out_sqnr, 2),
                rel_rmse=_r(math.sqrt(noise[op.output] / signal[op.output]) if signal[op.output] > 0 else 0.0, 5),
                input_sqnr_db=_r(in_sqnr, 2),
                added_noise_db=_r(in_sqnr - out_sqnr, 2) if in_sqnr is not None and out_sqnr is not None else None,
                float_min=_r(lo[op.output], 5),
                float_max=_r(hi[op.output], 5),
                dtype=np.dtype(t["dtype"]).name,
                scale=float(scale) if scale else None,
                zero_point=int(zero) if scale else None,
                params=op.params,
                param_share=round(op.params / total_params, 5),
                macs=op.macs,
                mac_share=round(op.macs / total_macs, 5),
                in_float=np.dtype(t["dtype"]) in FLOAT_DTYPES,
            )
        )
    consumers = {i: op for op in reversed(compute) for i in op.inputs}
    for k, op in enumerate(compute):  # onnx2tf's explicit PAD has no ONNX twin: name it after its consumer
        nxt = consumers.get(op.output)
        if rows[k].module is None and op.op == "PAD" and nxt is not None:
            module = next((r.module for r, o in zip(rows, compute) if o is nxt and r.module), None)
            if module:
                rows[k] = replace(rows[k], label=f"{module} (pad)")
    order = sorted(range(len(rows)), key=lambda k: rows[k].sqnr_db if rows[k].sqnr_db is not None else 999)
    return LayerErrors(
        samples=int(len(samples)),
        source=source,
        module_names="matched by value to the ONNX graph" if names else "not available",
        float_ops=sum(r.in_float for r in rows),
        ops=tuple(rows),
        damage_order=tuple(order),
    )


def short_label(name: str) -> str:
    """``model_2/tf.nn.relu6_6/Relu6;model_2/tf.math.add_10/Add;model_2/tf.nn.convolution_6/convolution``
    -> ``tf.nn.convolution_6`` (the computing layer of a fused op)."""
    parts = [p.split("/")[1] if p.count("/") >= 2 else p for p in name.split(";")]
    for key in ("convolution", "depthwise", "conv", "matmul", "dense"):
        for p in parts:
            if key in p.lower():
                return p
    return parts[-1] if parts else name


def summary_lines(report: LayerErrors, limit: int = 8) -> list[str]:
    """The worst ops by output SQNR, one line each, for the terminal and the run log."""
    lines = [f"per-layer error on {report.samples} {report.source} (worst first):"]
    for r in report.worst(limit):
        added = r.added_noise_db if r.added_noise_db is not None else "-"
        lines.append(
            f"  #{r.depth:<3} {r.op:<18} {r.label[:48]:<48} SQNR {r.sqnr_db:>6} dB  added {added:>5} dB"
            f"  range [{r.float_min or 0:.3g}, {r.float_max or 0:.3g}]  scale {r.scale or 0:.3g}"
        )
    return lines


def _r(x: float | None, digits: int) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)
