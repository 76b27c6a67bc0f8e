"""Plotly figures (plain JSON) for the portal pages.

The variant charts (size, latency per thread count, agreement/accuracy, accuracy against size) are the
engine's (``conversions.engine.charts``), the same ones report.html draws; this module only picks the series
for a page and adds the per-layer error chart, which only the run page shows. The pages draw the figures with
the plotly.js served from ``static/`` (no CDN), so the portal works offline.
"""

from __future__ import annotations

from typing import Any, Iterable

from conversions.engine.report.charts import LAYOUT, report_charts, variant_series


def _charted(report: dict[str, Any]) -> dict[str, Any]:
    """The report's variants that can be drawn (a dict naming its variant); other entries are left out."""
    variants = report.get("variants") if isinstance(report.get("variants"), list) else []
    return {"variants": [v for v in variants if isinstance(v, dict) and v.get("variant")]}


def run_charts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The four variant charts of one run's report (empty when it has no variants)."""
    return report_charts(variant_series(_charted(report)))


def compare_charts(runs: Iterable[tuple[int, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The same charts over several runs' ``(run id, report)``, series labelled ``r12 int8``; taller, with the
    legend above the plot, since many slanted labels take the room below it."""
    charts = report_charts([s for pk, report in runs for s in variant_series(_charted(report), prefix=f"r{pk} ")])
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
