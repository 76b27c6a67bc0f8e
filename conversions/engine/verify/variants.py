"""Verification of every built variant against PyTorch on the run's held-out inputs.

Fidelity, labeled accuracy, integer-only audit and latency (interleaved across variants) per variant, plus a
few images where the most quantized variant and PyTorch disagree.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.config import ExportConfig
from conversions.engine.convert.tf_routes import TFGraph
from conversions.engine.data.run_inputs import EvaluationSet, PreparedData
from conversions.engine.model.loading import LoadedModel
from conversions.engine.progress import Progress
from conversions.engine.report.results import (
    DisagreementExample,
    Disagreements,
    Prediction,
    PyTorchReference,
    VariantReport,
)
from conversions.engine.tensors import to_tf_layout
from conversions.engine.variants import REFERENCE, primary
from conversions.engine.verify.accuracy import labeled_accuracy, with_drop


def verify_variants(
    config: ExportConfig,
    loaded: LoadedModel,
    graph: TFGraph,
    built: dict[str, bytes],
    data: PreparedData,
    outputs: dict[str, Path],
    progress: Progress,
) -> tuple[list[VariantReport], PyTorchReference]:
    import torch

    from conversions.engine.verify.interpreter import (
        TFLiteModel,
        audit_ops,
        measure_latencies,
        predict_many,
    )
    from conversions.engine.verify.metrics import fidelity, output_metrics

    eval_nchw = data.evaluation.inputs_nchw
    step = 1 if loaded.route == "exported_program" else 16  # an exported program keeps its traced batch size
    with torch.no_grad():
        chunks = [loaded.module(torch.from_numpy(eval_nchw[i : i + step])) for i in range(0, len(eval_nchw), step)]
    refs = [np.concatenate([o.numpy() for o in chunk]).astype(np.float32) for chunk in zip(*(_outputs(c) for c in chunks))]
    ref = refs[0]
    names = list(loaded.output_names) or [f"output_{i}" for i in range(len(refs))]
    eval_tf = to_tf_layout(eval_nchw, graph.input_layout)

    wanted = [REFERENCE, *[v for v in config.variants if v != REFERENCE]]
    sample = eval_tf[:1]
    refused = xnnpack_refusals(built, wanted, progress)
    latencies: dict[str, dict[str, Any]] = {v: {} for v in wanted}
    for threads in config.latency_threads:
        progress.log(f"timing {len(wanted)} models, {config.latency_runs} runs each, {threads} thread(s)")
        stats = measure_latencies(
            {v: built[v] for v in wanted},
            sample,
            threads=threads,
            runs=config.latency_runs,
            without_xnnpack=frozenset(refused),
        )
        for v, s in stats.items():
            latencies[v][str(threads)] = s

    targets = data.evaluation.targets
    pytorch_accuracy = labeled_accuracy(ref, targets) if targets is not None else None
    float_size = len(built[REFERENCE])
    reports = []
    outputs_by_variant: dict[str, np.ndarray] = {}
    for i, variant in enumerate(wanted):
        progress.update(i / len(wanted), variant)
        model = TFLiteModel(built[variant], xnnpack=variant not in refused)
        outs = predict_many(model, eval_tf)
        out = outs[0]
        outputs_by_variant[variant] = out
        per_output = [output_metrics(r, o, n) for r, o, n in zip(refs, outs, names)] if len(refs) > 1 or ref.ndim == 4 else []
        fid = fidelity(ref, out)
        if len(per_output) > 1:  # a model is as faithful as its worst output, not its first
            fid = replace(fid, sqnr_db=min(m["sqnr_db"] for m in per_output))
        extra = {"outputs": per_output} if per_output else {}
        if variant in refused:
            extra["xnnpack_refused"] = refused[variant]
        fully_integer, float_ops, counts = audit_ops(built[variant])
        io = model.io_description()
        target = outputs.get(variant)
        reports.append(
            VariantReport(
                variant=variant,
                output=str(target) if target else "",
                size_bytes=len(built[variant]),
                sha256=hashlib.sha256(built[variant]).hexdigest(),
                float32_size_bytes=float_size,
                size_ratio=round(len(built[variant]) / float_size, 4),
                input={
                    "shape": io["input"]["shape"],
                    "dtype": io["input"]["dtype"],
                    "layout": graph.input_layout,
                    "scale": io["input"]["scale"],
                    "zero_point": io["input"]["zero_point"],
                    **_normalisation(data),
                },
                output_details={"outputs": io["outputs"]},
                latency_ms=latencies[variant],
                fidelity=fid,
                fully_integer=fully_integer,
                float_ops=list(float_ops),
                op_counts=counts,
                accuracy=with_drop(labeled_accuracy(out, targets), pytorch_accuracy) if pytorch_accuracy else None,
                extra=extra,
            )
        )
    # The float32 model is only reported as a variant when it was asked for; its figures stay the reference.
    float_report = reports[0]
    pytorch = PyTorchReference(
        evaluation_samples=len(eval_nchw),
        float32_fidelity=float_report.fidelity,
        float32_latency_ms=dict(float_report.latency_ms),
        float32_size_bytes=float_size,
        accuracy=pytorch_accuracy,
        disagreements=disagreement_examples(ref, outputs_by_variant, config.variants, data.evaluation),
    )
    return [r for r in reports if r.variant in config.variants], pytorch


def _outputs(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def xnnpack_refusals(built: dict[str, bytes], wanted: list[str], progress: Progress) -> dict[str, str]:
    """Variant -> why XNNPACK cannot run it (refused or crashed in a child process); those run without it."""
    from conversions.engine.verify.native import xnnpack_problem

    refused = {}
    for variant in wanted:
        problem = xnnpack_problem(built[variant])
        if problem:
            refused[variant] = problem
            progress.log(f"{variant}: {problem}; verifying and timing it without XNNPACK (reference kernels)")
    return refused


def xnnpack_warnings(reports: list[VariantReport]) -> list[str]:
    """One sentence per variant XNNPACK could not run, for the run's warnings."""
    return [
        f"{r.variant}: {r.extra['xnnpack_refused']}; it was verified and timed without XNNPACK (reference kernels), "
        "so its latency is not what XNNPACK would give; report the model with this message"
        for r in reports
        if r.extra.get("xnnpack_refused")
    ]


def disagreement_examples(
    ref: np.ndarray, outputs: dict[str, np.ndarray], variants: tuple[str, ...], evaluation: EvaluationSet, limit: int = 6
) -> Disagreements | None:
    """A few held-out images where the most quantized variant and PyTorch disagree, with both top-3."""
    from conversions.engine.verify.metrics import is_classifier_output, top_k

    variant = primary(v for v in variants if v != REFERENCE and v in outputs)
    if variant is None or not is_classifier_output(ref) or not evaluation.files:
        return None
    out = outputs[variant]
    wrong = np.flatnonzero(ref.argmax(axis=1) != out.argmax(axis=1))
    names = evaluation.class_names

    def named(pairs: list[tuple[int, float]]) -> tuple[Prediction, ...]:
        return tuple(Prediction(i, names[i] if names and i < len(names) else str(i), p) for i, p in pairs)

    return Disagreements(
        variant=variant,
        count=len(wrong),
        examples=tuple(
            DisagreementExample(
                file=evaluation.files[i],
                thumbnail=_thumbnail_data_uri(evaluation.files[i]),
                pytorch_top3=named(top_k(ref[i])),
                variant_top3=named(top_k(out[i])),
            )
            for i in wrong[:limit]
        ),
    )


def _thumbnail_data_uri(path: str, size: int = 112) -> str | None:
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _normalisation(data: PreparedData) -> dict[str, Any]:
    """How pixels become model input; ``pixel_scale`` so it never hides the input tensor's quantization ``scale``."""
    spec = data.report.get("preprocess") or {}
    return {"mean": spec.get("mean"), "std": spec.get("std"), "pixel_scale": spec.get("scale"), "preset": spec.get("preset")}


SLOW_INT8_OPS = ("HARD_SWISH", "PRELU", "SOFTMAX", "EXP", "DIV", "GELU", "AVERAGE_POOL_2D", "POW")
"""Ops XNNPACK (LiteRT 2.1) has no int8 kernel for, so they run on TFLite's reference kernels. Int8 LEAKY_RELU,
LOGISTIC, TANH, ELU, MEAN and ADD/SUB/MUL are delegated and are not named as culprits."""


SLOWER_MARGIN = 1.1
"""int8 counts as slower only beyond this ratio: closer than that is timing noise on a shared CPU."""


def slower_than_float(reports: list[VariantReport], pytorch: PyTorchReference, threads: str = "1") -> list[VariantReport]:
    """Marks each variant slower than float32 at ``threads`` (``extra["slower"]``: ratio and the ops likely at fault)."""
    base = pytorch.float32_latency_ms.get(threads)
    base_ms = getattr(base, "median", None)
    out = []
    for r in reports:
        lat = r.latency_ms.get(threads)
        if r.variant == REFERENCE or not base_ms or lat is None or lat.median <= base_ms * SLOWER_MARGIN:
            out.append(r)
            continue
        ops = {op: n for op, n in r.op_counts.items() if op in SLOW_INT8_OPS}
        islands = sorted({f.split("(")[0] for f in r.float_ops})
        slower = {"ratio": round(lat.median / base_ms, 2), "threads": int(threads), "ops": ops, "float_ops": islands}
        out.append(replace(r, extra={**r.extra, "slower": slower}))
    return out


def slower_warnings(reports: list[VariantReport]) -> list[str]:
    lines = []
    for r in reports:
        s = r.extra.get("slower")
        if not s:
            continue
        named = ", ".join(f"{op} x{n}" for op, n in sorted(s["ops"].items(), key=lambda kv: -kv[1]))
        why = f"ops responsible: {named}" if named else "no op known to be slow in int8 was found"
        if s["float_ops"]:
            why += f"; ops left in float between int8 ops (QUANTIZE/DEQUANTIZE at each): {', '.join(s['float_ops'])}"
        runtime = "XNNPACK"
        if r.extra.get("xnnpack_refused"):  # the whole file ran on builtin kernels: that, not its ops, is the cause
            runtime = "builtin kernels"
            why = ("XNNPACK refused to prepare it, so it ran on LiteRT's builtin kernels while float32 ran on "
                   f"XNNPACK; {why}")  # fmt: skip
        lines.append(
            f"{r.variant}: int8 slower than float32 ({s['ratio']}x its latency at {s['threads']} thread, {runtime}); "
            f"{why}. On a CPU float32 may be the better file; on an integer-only accelerator the int8 one still is"
        )
    return lines
