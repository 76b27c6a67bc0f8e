"""Plotly figures (as plain JSON) for the run page: size and latency per variant, and fidelity.

The page draws them with the plotly.js served from ``static/`` (no CDN), so the portal works offline.
"""

from __future__ import annotations

from typing import Any

COLORS = {"float32": "#8a94a6", "float16": "#5b8def", "dynamic": "#9b6bd6", "int8": "#2f9e6e", "int16x8": "#e0913a"}
LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 280,
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "yaxis": {"gridcolor": "#e5e8ee", "zeroline": False},
    "showlegend": False,
}


def _label(variant: str) -> str:
    return "float32" if variant == "none" else variant


def _bar(title: str, labels: list[str], values: list[Any], unit: str, fmt: str) -> dict[str, Any]:
    return {
        "data": [{
            "type": "bar",
            "x": labels,
            "y": values,
            "marker": {"color": [COLORS.get(label, "#5b8def") for label in labels]},
            "text": [fmt.format(v) if v is not None else "" for v in values],
            "textposition": "outside",
            "cliponaxis": False,
            "hovertemplate": "%{x}: %{y}" + unit + "<extra></extra>",
        }],
        "layout": {**LAYOUT, "title": {"text": title, "x": 0, "font": {"size": 14}},
                   "yaxis": {**LAYOUT["yaxis"], "title": {"text": unit.strip()}}},
    }  # fmt: skip


def run_charts(report: dict[str, Any]) -> dict[str, Any]:
    """``{"size": fig, "latency": fig, "fidelity": fig}`` for the variants in ``report`` (empty if none)."""
    variants = report.get("variants") or []
    if not variants:
        return {}
    labels = [_label(v["variant"]) for v in variants]
    raw = [v.get("size_bytes") for v in variants]
    unit, scale = (" MB", 1e6) if max((s or 0) for s in raw) >= 1e6 else (" KB", 1e3)
    sizes = [round(s / scale, 3) if s is not None else None for s in raw]
    charts = {"size": _bar("Model size", labels, sizes, unit, "{:.2f}" + unit)}
    latencies = []
    for v in variants:
        lat = v.get("latency_ms") or {}
        first = lat.get("1") or (lat[sorted(lat)[0]] if lat else None)
        latencies.append(round(first["median"], 3) if first else None)
    if any(x is not None for x in latencies):
        charts["latency"] = _bar("Latency (median, 1 thread)", labels, latencies, " ms", "{:.2f} ms")
    top1 = [(v.get("fidelity") or {}).get("top1_agreement") for v in variants]
    sqnr = [(v.get("fidelity") or {}).get("sqnr_db") for v in variants]
    if any(x is not None for x in top1):
        charts["fidelity"] = _bar("Top-1 agreement with PyTorch", labels, top1, " %", "{:.1f} %")
        charts["fidelity"]["layout"]["yaxis"]["range"] = [0, 105]
    elif any(x is not None for x in sqnr):
        charts["fidelity"] = _bar("Output SQNR vs PyTorch", labels, sqnr, " dB", "{:.1f} dB")
    return charts
