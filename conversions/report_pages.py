"""What the run and compare pages show of a typed ``ExportReport``: table rows, per-variant details, charts.

A stored report is rehydrated with ``ExportReport.from_dict`` (which forgives reports of earlier versions);
everything here reads attributes and hands the templates plain rows. The variant charts are the engine's
(``engine.report.charts``), the same ones report.html draws; the per-layer chart is the run page's own. The
pages draw them with the plotly.js served from ``static/``, so the portal works offline.
"""

from __future__ import annotations

from typing import Any, Iterable

from conversions.engine.errors import render
from conversions.engine.report.charts import LAYOUT, report_charts, variant_series
from conversions.engine.report.int8_results import GuardResult, LayerError
from conversions.engine.report.records import to_json
from conversions.engine.report.results import (
    ExportReport,
    LatencyStats,
    Prediction,
    VariantReport,
)
from conversions.wording import PORTAL_FIELD_NAMES

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
KEY_LABELS = {"map50": "mAP@.5", "map50_95": "mAP@.5:.95", "sqnr_db": "SQNR dB"}


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
        rows.append({
            "label": v.variant,
            "reference": False,
            "size_bytes": v.size_bytes or None,
            "size_ratio": v.size_ratio,
            "latency": [_latency(v.latency_ms.get(t)) for t in threads],
            "top1_agreement": fid.top1_agreement if fid else None,
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
        })  # fmt: skip
    return rows


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
    """Which optional column groups any row fills (agreement with PyTorch, labeled accuracy, detection mAP)."""

    def has(*keys: str) -> bool:
        return any(r.get(k) is not None for r in rows for k in keys)

    return {
        "accuracy": has("top1", "top5"),
        "detection": has("map50", "map50_95"),
        "agreement": has("top1_agreement", "confident_agreement", "top5_agreement"),
    }


def disagreements(report: ExportReport) -> dict[str, Any] | None:
    """Where the most quantized variant and PyTorch disagree: examples with a usable thumbnail and both top-3."""
    dis = report.pytorch.disagreements
    if dis is None or not (dis.examples or dis.count):
        return None
    examples = [
        {
            "file": ex.file,
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


def variant_details(report: ExportReport) -> list[dict[str, Any]]:
    """Per variant, how it was made beyond the table: ranges, accuracy guard, per-layer error, detection."""
    out = []
    for v in report.variants:
        layers = layer_rows(v)
        detail = {
            "variant": v.variant,
            "calibration": _calibration(v),
            "guard": guard_summary(v.guard) if v.guard else None,
            "guard_steps": _table([to_json(s) for s in v.guard.steps], exclude=("ops",)) if v.guard else None,
            "layers": worst_layers(layers),
            "all_layers": layers,
            "layer_columns": layer_columns(layers),
            "layer_count": len(layers),
            "layer_notes": [("samples", v.layer_errors.samples), ("source", v.layer_errors.source),
                            ("module names", v.layer_errors.module_names), ("float ops", v.layer_errors.float_ops)]
            if v.layer_errors else [],
            "detection": _flat(v.extra.get("detection"), skip=("head",)),
            "detection_samples": detection_samples(v.extra.get("detection_samples")),
            "other": _flat({k: val for k, val in v.extra.items() if k not in ("detection", "detection_samples")}),
        }  # fmt: skip
        if any(detail[k] for k in ("calibration", "guard", "layers", "detection", "detection_samples", "other")):
            out.append(detail)
    return out


def _calibration(v: VariantReport) -> list[tuple[str, Any]]:
    items = _flat(to_json(v.calibration), skip=("narrowed",)) if v.calibration else []
    if v.bias_correction:
        items.append(("bias correction", _flat_text(to_json(v.bias_correction))))
    if v.calibration_method:
        items.insert(0, ("activation ranges", v.calibration_method))
    return items


def layer_rows(v: VariantReport) -> list[dict[str, Any]]:
    """Per-op rows in depth order, as the table's columns."""
    ops: tuple[LayerError, ...] = v.layer_errors.ops if v.layer_errors else ()
    return [{**{key: getattr(op, key) for key, _, _ in LAYER_COLUMNS}, "name": op.name} for op in ops]


def worst_layers(rows: list[dict[str, Any]], limit: int = WORST_LAYERS) -> list[dict[str, Any]]:
    """The ``limit`` ops with the lowest output SQNR (ops without one come last)."""
    return sorted(rows, key=lambda r: (_num(r["sqnr_db"]) is None, _num(r["sqnr_db"]) or 0.0))[:limit]


def layer_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [col for col in LAYER_COLUMNS if any(r.get(col[0]) not in (None, "") for r in rows)]


def guard_summary(g: GuardResult) -> dict[str, list[tuple[str, Any]]]:
    """The accuracy guard as ``(label, text)`` pairs: ``items`` (outcome, drop before and after, ops kept, cost,
    time) and ``more`` (the rest of what it recorded)."""
    items: list[tuple[str, Any]] = []
    if g.result:
        items.append(("result", g.result))
    items.append(("budget met", {True: "yes", False: "no"}.get(g.budget_met, "not measurable")))
    if g.max_drop is not None:
        items.append(("max drop", f"{g.max_drop} points"))
    before, after = g.before, g.after
    if before or after:
        items.append(("metric", g.metric_label or g.metric or "metric"))
        items.append(("drop before → after", f"{_points(before and before.drop)} → {_points(after and after.drop)}"))
        items.append(("value before → after", f"{_value(before)} → {_value(after)}"))
    if g.total_ops is not None or g.kept_float:
        kept = [f"{k.label or k.module or k.name} ({k.op})" if k.op else (k.label or k.name) for k in g.kept_float]
        count = f"{len(kept)} op{'s' if len(kept) != 1 else ''}"
        if g.total_ops:
            count += f" of {g.total_ops}"
        if g.kept_float_fraction is not None:
            count += f" ({g.kept_float_fraction * 100:.0f}%)"
        items.append(("kept in float", count + (": " + ", ".join(kept) if kept else "")))
    if g.cost:
        parts = [f"{name} ×{value:g}" for name, value in (("size", g.cost.size_ratio), ("latency", g.cost.latency_ratio))
                 if value is not None]  # fmt: skip
        items.append(("cost", ", ".join(parts) or _flat_text(to_json(g.cost))))
    if g.seconds:
        total = g.seconds.get("total")
        rest = ", ".join(f"{k} {v} s" for k, v in g.seconds.items() if k != "total")
        items.append(("time", f"{total} s" + (f" ({rest})" if rest else "") if total is not None else rest))
    if g.message:
        items.append(("summary", render(g.message, PORTAL_FIELD_NAMES)))
    more = [(_label(k), getattr(g, k)) for k in ("reference", "evaluation_samples", "metric_samples", "ranking_samples",
                                                  "ranking_source", "ranking_evaluations", "ranking_baseline_sqnr_db")
            if getattr(g, k) not in (None, "", 0)]  # fmt: skip
    return {"items": items, "more": more}


def _value(m: Any) -> str:
    return "—" if m is None or m.value is None else str(m.value)


def _points(value: Any) -> str:
    return f"{value} points" if value is not None else "—"


def detection_samples(value: Any) -> list[dict[str, Any]]:
    """Each sample's pictures (every ``data:image`` value, side by side) and its other scalar fields."""
    out = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        images = [(k.replace("_image", "").replace("_", " "), v) for k, v in item.items() if is_data_image(v)]
        if images:
            notes = [(_label(k), v) for k, v in item.items() if k != "file" and _scalar(v)]
            out.append({"file": str(item.get("file") or ""), "images": images, "notes": notes})
    return out


def run_charts(report: ExportReport) -> dict[str, dict[str, Any]]:
    """The four variant charts of one run's report (empty when it has no variants)."""
    return report_charts(variant_series(report))


def compare_charts(runs: Iterable[tuple[int, ExportReport]]) -> dict[str, dict[str, Any]]:
    """The same charts over several runs' ``(run id, report)``, series labelled ``r12 int8``; taller, with the
    legend above the plot, since many slanted labels take the room below it."""
    charts = report_charts([s for pk, report in runs for s in variant_series(report, prefix=f"r{pk} ")])
    for name, fig in charts.items():
        layout = fig["layout"]
        layout.update(height=380, margin={**LAYOUT["margin"], "t": 70},
                      legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"})
        if name != "tradeoff":
            layout["xaxis"] = {**layout.get("xaxis", {}), "automargin": True, "tickangle": -40}
    tradeoff = charts.get("tradeoff", {}).get("data") or [{}]
    if len(tradeoff[0].get("x") or []) > 8:  # labels of many points overlap; hover names them
        tradeoff[0].update(mode="markers", hovertemplate="%{text}: %{x}, %{y}<extra></extra>")
    return charts


def layer_error_chart(variant: str, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Output SQNR of each op along the network's depth (lower is worse); None without any SQNR."""
    points = [r for r in rows if isinstance(r.get("sqnr_db"), (int, float))]
    if not points:
        return None
    return {
        "data": [{
            "type": "scatter", "mode": "lines+markers", "name": "SQNR",
            "x": [r["depth"] for r in points], "y": [r["sqnr_db"] for r in points],
            "text": [f"{r.get('label') or r.get('name') or ''} ({r.get('op') or '?'})" for r in points],
            "hovertemplate": "#%{x} %{text}: %{y:.1f} dB<extra></extra>",
            "line": {"color": "#2f6fdf", "width": 1.5}, "marker": {"size": 5},
        }],
        "layout": {
            **LAYOUT, "showlegend": False,
            "title": {"text": f"{variant}: per-layer SQNR along depth", "x": 0, "font": {"size": 14}},
            "xaxis": {"title": {"text": "op (execution order)"}, "zeroline": False, **({"dtick": 1} if len(points) <= 12 else {})},
            "yaxis": {**LAYOUT["yaxis"], "title": {"text": "SQNR dB"}},
        },
    }  # fmt: skip


def calibration_files(report: ExportReport) -> list[str]:
    files = report.calibration.get("files")
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []


def _latency(stats: LatencyStats | None) -> dict[str, float] | None:
    return {"median": stats.median, "p90": stats.p90} if stats else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not is_data_image(value)


def _label(key: Any) -> str:
    return KEY_LABELS.get(str(key), str(key).replace("_", " "))


def _flat(value: Any, skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Scalar items of a dict, with one level of nested dicts as ``outer inner``; long lists are summarised."""
    items: list[tuple[str, Any]] = []
    for key, val in (value if isinstance(value, dict) else {}).items():
        if key in skip or is_data_image(val):
            continue
        label = _label(key)
        if isinstance(val, dict):
            text = _flat_text(val)
            if text:
                items.append((label, text))
        elif isinstance(val, list):
            if val and all(_scalar(x) for x in val):
                items.append((label, val))
            elif val:
                items.append((label, f"{len(val)} entries"))
        elif val is not None:
            items.append((label, val))
    return items


def _flat_text(value: dict[str, Any]) -> str:
    def text(v: Any) -> str:
        return ("yes" if v else "no") if isinstance(v, bool) else str(v)

    return ", ".join(f"{_label(k)} {text(v)}" for k, v in value.items() if _scalar(v))


def _table(rows: list[Any], exclude: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """A list of flat dicts as ``{"columns", "rows"}`` (scalar columns only, in first-seen order)."""
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows:
        return None
    columns: list[str] = []
    for r in rows:
        columns += [k for k, v in r.items() if k not in columns and k not in exclude and _scalar(v)]
    return {"columns": [_label(c) for c in columns], "rows": [[r.get(c) for c in columns] for r in rows]}

