"""The rows people read of an ``ExportReport``: the variants table, the per-layer table, the disagreements.

Plain values (numbers, names, None for "not measured"); ``report.html_tables`` renders them as HTML for
report.html and the portal's pages alike, and report.md as Markdown, so every place shows the same figures.
"""

from __future__ import annotations

from typing import Any, Iterable

from conversions.engine.report.int8_results import LayerError
from conversions.engine.report.results import ExportReport, LatencyStats, Prediction, VariantReport
from conversions.engine.verify.metrics import wilson_interval

LAYER_COLUMNS = (
    ("depth", "#", "num"),
    ("op", "Op", ""),
    ("label", "Layer", ""),
    ("module", "PyTorch module", ""),
    ("sqnr_db", "SQNR dB", "num"),
    ("rel_rmse", "Rel. RMSE", "num"),
    ("added_noise_db", "Added noise dB", "num"),
    ("dtype", "Type", ""),
)
WORST_LAYERS = 15


def is_data_image(value: Any) -> bool:
    """Only ``data:image/...`` URIs from a report are put in an ``<img src>``."""
    return isinstance(value, str) and value.startswith("data:image/")


def latency_threads(reports: Iterable[ExportReport]) -> list[str]:
    """Every thread count measured in any of ``reports``, ascending."""
    found = {t for r in reports for v in r.variants for t in v.latency_ms}
    return sorted(found, key=lambda t: (not str(t).isdigit(), int(t) if str(t).isdigit() else 0, str(t)))


def variant_rows(report: ExportReport, threads: list[str]) -> list[dict[str, Any]]:
    """One row per variant (PyTorch first when its accuracy was measured): the columns of the variants table."""
    rows = []
    reference = pytorch_row(report)
    if reference:
        rows.append({**reference, "latency": [None] * len(threads)})
    for v in report.variants:
        fid, acc = v.fidelity, v.accuracy or {}
        micro = v.targets.tflite_micro if v.targets else None
        rows.append({
            "label": v.variant,
            "reference": False,
            "size_bytes": v.size_bytes or None,
            "size_ratio": v.size_ratio,
            "latency": [_latency(v.latency_ms.get(t)) for t in threads],
            "top1_agreement": fid.top1_agreement if fid else None,
            "top1_interval": agreement_interval(fid.top1_agreement, fid.samples) if fid else None,
            "samples": fid.samples if fid else None,
            "confident_agreement": fid.confident_top1_agreement if fid else None,
            "confident_samples": fid.confident_samples if fid else None,
            "top5_agreement": fid.top5_agreement if fid else None,
            "sqnr_db": fid.sqnr_db if fid else None,
            "top1": _num(acc.get("top1")),
            "top5": _num(acc.get("top5")),
            "top1_drop": _num(acc.get("top1_drop")),
            "top5_drop": _num(acc.get("top5_drop")),
            "map50": _num(acc.get("map50")),
            "map50_95": _num(acc.get("map50_95")),
            "map_drop": _num(acc.get("drop_map50_95")),
            "fully_integer": v.fully_integer,
            "float_ops": list(v.float_ops),
            "micro": None if micro is None else {
                "supported": micro.supported, "arena_bytes": micro.arena_bytes, "ops": list(micro.unsupported_ops),
                "bit_exact": micro.bit_exact, "max_abs_diff": micro.max_abs_diff_vs_litert, "message": micro.message,
            },
        })  # fmt: skip
    return rows


def agreement_interval(percent: float | None, samples: int) -> tuple[float, float] | None:
    """The 95% Wilson interval of an agreement percentage measured on ``samples`` inputs, in percent."""
    if percent is None or not samples:
        return None
    interval = wilson_interval(round(percent * samples / 100.0), samples)
    return (round(interval[0] * 100, 1), round(interval[1] * 100, 1)) if interval else None


def pytorch_row(report: ExportReport) -> dict[str, Any] | None:
    """The reference row: PyTorch's labeled accuracy (or mAP against labels); None when none was measured."""
    acc = report.pytorch.accuracy or {}
    detect = next((v.accuracy for v in report.variants
                   if v.accuracy and v.accuracy.get("pytorch_map50_95") is not None), {})  # fmt: skip
    if _num(acc.get("top1")) is None and detect.get("reference") != "labels":
        return None
    return {
        "label": "PyTorch", "reference": True, "top1": _num(acc.get("top1")),
        "top5": _num(acc.get("top5")), "map50": _num(detect.get("pytorch_map50")),
        "map50_95": _num(detect.get("pytorch_map50_95")),
    }  # fmt: skip


def table_columns(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """Which optional column groups any row fills (agreement, labeled accuracy, detection mAP, TFLite Micro)."""

    def has(*keys: str) -> bool:
        return any(r.get(k) is not None for r in rows for k in keys)

    return {
        "accuracy": has("top1", "top5"),
        "detection": has("map50", "map50_95"),
        "agreement": has("top1_agreement", "confident_agreement", "top5_agreement"),
        "micro": has("micro"),
    }


def disagreements(report: ExportReport) -> dict[str, Any] | None:
    """Where the most quantized variant and PyTorch disagree: examples with a usable thumbnail and both top-3
    by class name (the file's name only, never the machine's path)."""
    dis = report.pytorch.disagreements
    if dis is None or not (dis.examples or dis.count):
        return None
    examples = [
        {
            "name": ex.file.replace("\\", "/").rsplit("/", 1)[-1],
            "thumbnail": ex.thumbnail if is_data_image(ex.thumbnail) else None,
            "pytorch_top3": _predictions(ex.pytorch_top3),
            "variant_top3": _predictions(ex.variant_top3),
        }
        for ex in dis.examples
    ]
    return {"variant": dis.variant or "?", "count": dis.count, "samples": report.pytorch.evaluation_samples,
            "examples": examples}  # fmt: skip


def _predictions(preds: tuple[Prediction, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name or str(p.index), "p": p.p} for p in preds]


def layer_rows(v: VariantReport) -> list[dict[str, Any]]:
    """Per-op rows in depth order, as the table's columns."""
    ops: tuple[LayerError, ...] = v.layer_errors.ops if v.layer_errors else ()
    return [{**{key: getattr(op, key) for key, _, _ in LAYER_COLUMNS}, "name": op.name} for op in ops]


def worst_layers(rows: list[dict[str, Any]], limit: int = WORST_LAYERS) -> list[dict[str, Any]]:
    """The ``limit`` ops with the lowest output SQNR (ops without one come last)."""
    return sorted(rows, key=lambda r: (_num(r["sqnr_db"]) is None, _num(r["sqnr_db"]) or 0.0))[:limit]


def layer_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [col for col in LAYER_COLUMNS if any(r.get(col[0]) not in (None, "") for r in rows)]


def _latency(stats: LatencyStats | None) -> dict[str, float] | None:
    return {"median": stats.median, "p90": stats.p90} if stats else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
