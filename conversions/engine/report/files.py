"""report.md (for a pull request) and a self-contained report.html (tables, charts and thumbnails inline;
opens offline) beside the artifacts.

Both name files by their names only, never by the path on the machine that made them: a report travels.
The HTML tables are ``html_tables``' rendering, the one the portal's run page shows.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from conversions.engine.report import atomic
from conversions.engine.report.charts import report_charts, variant_series
from conversions.engine.report.html_tables import (
    RowGroup,
    device_table,
    disagreement_figures,
    layer_table,
    variants_table,
)
from conversions.engine.report.results import ExportReport
from conversions.engine.report.summary import device_lines, float_and_guard_lines, summary_table
from conversions.engine.report.tables import (
    disagreements,
    latency_threads,
    layer_rows,
    table_columns,
    variant_rows,
    worst_layers,
)

_ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/[^\s/'\"()]+)+/([^\s/'\"()]+)")


def without_paths(text: str) -> str:
    """``text`` with every absolute path replaced by its last part (the file's name)."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def facts(report: ExportReport) -> list[tuple[str, str]]:
    """What a reader needs before the tables: model, input, route, the data behind the figures, versions."""
    cal, ev = report.calibration or {}, report.evaluation or {}
    acc = report.pytorch.accuracy or {}
    float32 = report.pytorch.float32_fidelity
    items = [
        ("model", f"{report.model.get('name')}: {report.model.get('description') or ''}"),
        ("input", "x".join(str(d) for d in report.model.get("input_shape") or [])),
        ("conversion route", str(report.conversion_route.get("route") or "-")),
        ("calibration", f"{cal.get('samples', 0)} images, seed {cal.get('seed', '-')}"),
        ("verified on", f"{ev.get('samples', report.pytorch.evaluation_samples)} held-out inputs ({ev.get('source', 'dataset')})"),
        ("float32 .tflite vs PyTorch", f"SQNR {float32.sqnr_db} dB" if float32 and float32.sqnr_db is not None else "-"),
    ]
    if acc.get("top1") is not None:
        items.append(("PyTorch labeled accuracy", f"top-1 {acc['top1']:.1f}%, top-5 {acc['top5']:.1f}% on {acc['samples']} images"))
    items.append(("files", ", ".join(Path(v.output).name for v in report.variants if v.output) or "-"))
    items.append(("versions", ", ".join(f"{k} {v}" for k, v in report.versions.items())))
    return [(k, without_paths(v)) for k, v in items]


def notes(report: ExportReport) -> list[str]:
    """Warnings, float ops of integer variants and the accuracy guard's word, without machine paths."""
    return [without_paths(line) for line in [*float_and_guard_lines(report), *report.warnings]]


def markdown_report(report: ExportReport) -> str:
    lines = [f"# quantweb conversion report: {report.model['name']}", ""]
    lines += [f"- **{k}**: {v}" for k, v in facts(report)]
    lines += ["", "## Variants", "", summary_table(report, markdown=True), ""]
    device = device_lines(report)
    if device:
        lines += ["## Ready for the device", "", *[f"- {without_paths(d)}" for d in device], ""]
    dis = disagreements(report)
    if dis and dis["examples"]:
        lines += [f"## Where {dis['variant']} and PyTorch disagree ({dis['count']} of {dis['samples']} images)", ""]
        for ex in dis["examples"]:
            pt = ", ".join(_prediction(p) for p in ex["pytorch_top3"])
            vt = ", ".join(_prediction(p) for p in ex["variant_top3"])
            lines.append(f"- `{ex['name']}`: PyTorch {pt} | {dis['variant']} {vt}")
        lines.append("")
    extra = notes(report)
    if extra:
        lines += ["## Notes", "", *[f"- {n}" for n in extra], ""]
    lines.append("Timings (s): " + ", ".join(f"{k} {v}" for k, v in report.timings_s.items()))
    return "\n".join(lines) + "\n"


def _prediction(p: dict) -> str:
    return f"{p['name']} {p['p']:.2f}" if isinstance(p.get("p"), float) else str(p["name"])


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no early </script>)."""
    return json.dumps(value).replace("</", "<\\/")


_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem; color: #1d2330; }
h2 { margin-top: 2rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; font-size: 14px; }
dl.facts dt { color: #5a6475; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e8ee; padding: .35rem .55rem; text-align: left; vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
th.group { text-align: center; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.unit, .muted { color: #6b7485; font-weight: normal; }
.small { font-size: 11px; }
.tag { background: #eef2f8; border-radius: 4px; padding: 0 .35rem; font-family: ui-monospace, monospace; }
tr.reference { background: #fafbfc; }
.worse { color: #b3261e; }
.nowrap { white-space: nowrap; }
.code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
.chart { min-height: 300px; border: 1px solid #e5e8ee; border-radius: 6px; }
.disagreements figure { display: inline-block; width: 240px; vertical-align: top; font-size: 12px; margin: 0 1rem 1rem 0; }
.disagreements img { width: 112px; }
.preds { display: flex; gap: .5rem; }
.preds ol { padding-left: 1.2rem; margin: .2rem 0; }
"""


def html_report(report: ExportReport) -> str:
    charts = report_charts(variant_series(report))
    threads = latency_threads([report])
    rows = variant_rows(report, threads)
    name = escape(report.model["name"])
    sections = [
        '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts(report)) + "</dl>",
        f'<h2>Variants</h2><div class="scroll" id="variants">{variants_table([RowGroup(rows)], threads, table_columns(rows))}</div>',
    ]
    device = device_table(list(report.variants))
    if device:
        sections.append(f'<h2>Ready for the device</h2><div class="scroll" id="device">{device}</div>')
    sections.append('<h2>Charts</h2><div class="charts">'
                    + "".join(f'<div class="chart" id="chart-{key}"></div>' for key in charts) + "</div>")  # fmt: skip
    for v in report.variants:
        layers = layer_rows(v)
        if layers:
            worst = worst_layers(layers)
            sections.append(f"<h2>{escape(v.variant)}: per-layer error <span class=\"muted small\">the {len(worst)} worst "
                            f"of {len(layers)} ops by output SQNR</span></h2><div class=\"scroll\">{layer_table(worst)}</div>")  # fmt: skip
    dis = disagreements(report)
    if dis and dis["examples"]:
        sections.append(f"<h2>Where {escape(dis['variant'])} and PyTorch disagree <span class=\"muted small\">{dis['count']} "
                        f"of {dis['samples']} held-out images</span></h2>{disagreement_figures(dis)}")  # fmt: skip
    extra = notes(report)
    if extra:
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in extra) + "</ul>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>quantweb report: {name}</title>
<style>{_STYLE}</style>
<script>{_plotly_js()}</script>
</head><body>
<h1>Conversion report: {name}</h1>
{"".join(sections)}
<script>
const charts = {_script_json(charts)};
for (const [name, fig] of Object.entries(charts)) {{
  Plotly.newPlot("chart-" + name, fig.data, fig.layout, {{displayModeBar: false, responsive: true}});
}}
</script>
</body></html>
"""


def write_report_files(report: ExportReport, pages: dict[str, Path], force: bool) -> None:
    """Writes ``report.md`` and ``report.html`` where ``pages`` (``report_md`` / ``report_html``) say."""
    texts = {"report_md": markdown_report(report), "report_html": html_report(report)}
    for kind, path in pages.items():
        atomic.write_bytes_atomic(path, texts[kind].encode("utf-8"), force=force)
