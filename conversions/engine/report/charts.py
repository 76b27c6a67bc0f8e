"""Plotly figures (plain JSON dicts) for a report: the run page, the compare page and report.html share them.

Each figure compares variants: size, latency per thread count, fidelity/accuracy, and accuracy against size
so the trade-off is one glance. Nothing here imports plotly; the page draws the dicts with plotly.js.
"""

from __future__ import annotations

from typing import Any

from conversions.engine.report.records import to_json
from conversions.engine.report.results import ExportReport, VariantReport

COLORS = {"float32": "#8a94a6", "float16": "#5b8def", "dynamic": "#9b6bd6", "int8": "#2f9e6e", "int16x8": "#e0913a"}
THREAD_COLORS = ["#2f6fdf", "#e0913a", "#2f9e6e", "#9b6bd6"]
LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "height": 300,
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "yaxis": {"gridcolor": "#e5e8ee", "zeroline": False},
    "legend": {"orientation": "h", "y": -0.2},
}


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        **LAYOUT,
        "title": {"text": title, "x": 0, "font": {"size": 14}},
        "yaxis": {**LAYOUT["yaxis"], "title": {"text": y_title}},
        **extra,
    }


def _bar(name: str, x: list[str], y: list[Any], fmt: str, color: Any = None) -> dict[str, Any]:
    return {
        "type": "bar",
        "name": name,
        "x": x,
        "y": y,
        "marker": {"color": color or [COLORS.get(v, "#5b8def") for v in x]},
        "text": [fmt.format(v) if v is not None else "" for v in y],
        "textposition": "outside",
        "cliponaxis": False,
    }


def _series(series: list[tuple[str, VariantReport]]) -> list[str]:
    return [label for label, _ in series]


def report_charts(series: list[tuple[str, VariantReport]]) -> dict[str, dict[str, Any]]:
    """Charts over ``(label, variant dict)`` pairs; a label is a variant name, or ``run 12 int8`` on compare pages."""
    if not series:
        return {}
    labels = _series(series)
    colors = [COLORS.get(v.variant, "#5b8def") for _, v in series]
    charts: dict[str, dict[str, Any]] = {}
    raw = [v.size_bytes for _, v in series]
    unit, scale = ("MB", 1e6) if max((s or 0) for s in raw) >= 1e6 else ("KB", 1e3)
    sizes = [round(s / scale, 3) if s else None for s in raw]
    charts["size"] = {"data": [_bar("size", labels, sizes, "{:.2f} " + unit, colors)], "layout": _layout("Model size", unit, showlegend=False)}

    threads = sorted({t for _, v in series for t in v.latency_ms}, key=int)
    if threads:
        data = []
        for i, t in enumerate(threads):
            med = [v.latency_ms[t].median if t in v.latency_ms else None for _, v in series]
            p90 = [v.latency_ms[t].p90 if t in v.latency_ms else None for _, v in series]
            bar = _bar(f"{t} thread{'s' if t != '1' else ''}", labels, med, "{:.2f}", THREAD_COLORS[i % 4])
            bar["error_y"] = {"type": "data", "symmetric": False,
                              "array": [(p - m) if p is not None and m is not None else 0 for p, m in zip(p90, med)]}
            data.append(bar)
        charts["latency"] = {"data": data, "layout": _layout("Latency: median, bar to p90", "ms", barmode="group")}

    fid = [to_json(v.fidelity) if v.fidelity else {} for _, v in series]
    acc = [v.accuracy or {} for _, v in series]
    data = []
    if any(f.get("top1_agreement") is not None for f in fid):
        data.append(_bar("top-1 agreement", labels, [f.get("top1_agreement") for f in fid], "{:.1f}", "#2f6fdf"))
        data.append(_bar("on confident images", labels, [f.get("confident_top1_agreement") for f in fid], "{:.1f}", "#2f9e6e"))
    if any(a.get("top1") is not None for a in acc):
        data.append(_bar("labeled top-1 accuracy", labels, [a.get("top1") for a in acc], "{:.1f}", "#e0913a"))
    if any(a.get("map50_95") is not None for a in acc):
        data.append(_bar("mAP@0.5", labels, [a.get("map50") for a in acc], "{:.1f}", "#2f6fdf"))
        data.append(_bar("mAP@0.5:0.95", labels, [a.get("map50_95") for a in acc], "{:.1f}", "#e0913a"))
    if data:
        charts["fidelity"] = {"data": data, "layout": _layout("Agreement with PyTorch / accuracy", "%", barmode="group", yaxis={**LAYOUT["yaxis"], "range": [0, 110], "title": {"text": "%"}})}
    else:
        sq = [f.get("sqnr_db") for f in fid]
        charts["fidelity"] = {"data": [_bar("SQNR", labels, sq, "{:.1f} dB", colors)], "layout": _layout("Output SQNR vs PyTorch", "dB", showlegend=False)}

    use_acc = any(a.get("top1") is not None for a in acc)
    use_map = not use_acc and any(a.get("map50_95") is not None for a in acc)
    if use_acc or use_map:
        y = [a.get("top1" if use_acc else "map50_95") for a in acc]
        y_title = "labeled top-1 accuracy %" if use_acc else "mAP@0.5:0.95"
    else:
        y = [f.get("top1_agreement") if f.get("top1_agreement") is not None else f.get("sqnr_db") for f in fid]
        y_title = "top-1 agreement %" if any(f.get("top1_agreement") is not None for f in fid) else "SQNR dB"
    charts["tradeoff"] = {
        "data": [{
            "type": "scatter", "mode": "markers+text", "x": sizes, "y": y, "text": labels, "textposition": "top center",
            "marker": {"size": 12, "color": colors},
        }],
        "layout": _layout("Accuracy against size", y_title, showlegend=False, xaxis={"title": {"text": f"size {unit}"}, "rangemode": "tozero"}),
    }  # fmt: skip
    return charts


def variant_series(report: ExportReport, prefix: str = "") -> list[tuple[str, VariantReport]]:
    return [(f"{prefix}{v.variant}", v) for v in report.variants]
