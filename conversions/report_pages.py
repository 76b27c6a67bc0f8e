"""What the run and compare pages show of a typed ``ExportReport``: table rows, per-variant details, charts.

A stored report is rehydrated with ``ExportReport.from_dict`` (which forgives reports of earlier versions);
everything here reads attributes and hands the templates plain rows. The variants, per-layer and device tables
and the disagreement thumbnails are the engine's HTML (``engine.report.html_tables``), the same report.html
writes; so are the variant charts (``engine.report.charts``); the per-layer chart is the run page's own. The
pages draw them with the plotly.js served from ``static/``, so the portal works offline.
"""

from __future__ import annotations

from typing import Any, Iterable

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from conversions.engine.errors import render
from conversions.engine.report.charts import LAYOUT, report_charts, variant_series
from conversions.engine.report.html_tables import RowGroup, device_table, disagreement_figures, layer_table
from conversions.engine.report.html_tables import variants_table as variants_table_html
from conversions.engine.report.int8_results import GuardResult
from conversions.engine.report.records import to_json
from conversions.engine.report.results import ExportReport, VariantReport
from conversions.engine.report.tables import (
    disagreements,
    is_data_image,
    latency_threads,
    layer_rows,
    table_columns,
    variant_rows,
    worst_layers,
)
from conversions.wording import PORTAL_FIELD_NAMES

KEY_LABELS = {"map50": "mAP@.5", "map50_95": "mAP@.5:.95", "sqnr_db": "SQNR dB"}


def variants_table(report: ExportReport) -> SafeString:
    """The run page's variants table: the same HTML report.html writes (the engine escapes every value)."""
    threads = latency_threads([report])
    rows = variant_rows(report, threads)
    return mark_safe(variants_table_html([RowGroup(rows)], threads, table_columns(rows)) if report.variants else "")


def device_summary(report: ExportReport) -> SafeString:
    """Each file's metadata and TFLite Micro readiness, as report.html shows them."""
    return mark_safe(device_table(list(report.variants)))


def compare_table(entries: list[dict[str, Any]], threads: list[str]) -> SafeString:
    """The compare page's variants table: each finished run's rows in a ``<tbody data-run>`` under its run cell."""
    groups = [
        RowGroup(
            e["rows"],
            lead=format_html(
                '<th rowspan="{}" class="run-cell"><a href="{}">r{}</a><div class="small muted">{} v{}<br>{} samples, '
                "seed {}</div></th>", len(e["rows"]), e["run"].get_absolute_url(), e["run"].pk, e["run"].model_name,
                e["run"].model_version, e["run"].num_calib_samples, e["run"].seed),
            attrs=format_html('data-run="{}"', e["run"].pk),
        )
        for e in entries if e["charted"]
    ]  # fmt: skip
    rows = [r for g in groups for r in g.rows]
    return mark_safe(variants_table_html(groups, threads, table_columns(rows), lead_title="Run") if groups else "")


def disagreement_section(report: ExportReport) -> dict[str, Any] | None:
    """The disagreements' counts and their figures (the HTML report.html shows too)."""
    dis = disagreements(report)
    return {**dis, "figures": mark_safe(disagreement_figures(dis))} if dis else None


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
            "layer_table": mark_safe(layer_table(worst_layers(layers))),
            "all_layers": layers,
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



def warnings(report: ExportReport) -> list[str]:
    """The run's warnings, each input they name worded as the portal's forms call it."""
    return [render(w, PORTAL_FIELD_NAMES) for w in report.warnings]
