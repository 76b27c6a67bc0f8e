"""report.md and a self-contained report.html (plots inline, opens offline) beside the artifacts."""

from __future__ import annotations

import html
import json
from pathlib import Path

from conversions.engine.report import atomic
from conversions.engine.report.charts import report_charts, variant_series
from conversions.engine.report.results import ExportReport
from conversions.engine.report.summary import format_summary, summary_table


def markdown_report(report: ExportReport) -> str:
    lines = [
        f"# quantweb conversion report: {report.model['name']}",
        "",
        "```",
        format_summary(report),
        "```",
        "",
        "## Variants",
        "",
        summary_table(report, markdown=True),
        "",
        f"Conversion route: `{report.conversion_route.get('route')}`; timings (s): "
        + ", ".join(f"{k} {v}" for k, v in report.timings_s.items()),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()),
    ]
    dis = report.pytorch.disagreements
    if dis and dis.examples:
        lines += ["", f"## Where {dis.variant} and PyTorch disagree ({dis.count} images)", ""]
        for ex in dis.examples:
            pt = ", ".join(f"{p.name} {p.p:.2f}" for p in ex.pytorch_top3)
            vt = ", ".join(f"{p.name} {p.p:.2f}" for p in ex.variant_top3)
            lines.append(f"- `{Path(ex.file).name}`: PyTorch {pt} | {dis.variant} {vt}")
    return "\n".join(lines) + "\n"


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no early </script>)."""
    return json.dumps(value).replace("</", "<\\/")


def html_report(report: ExportReport) -> str:
    data = report.to_dict()
    charts = report_charts(variant_series(report))
    dis = report.pytorch.disagreements
    examples = ""
    for ex in dis.examples if dis else ():
        img = f'<img src="{ex.thumbnail}" alt="">' if ex.thumbnail else ""
        pt = "<br>".join(f"{html.escape(p.name)} {p.p:.2f}" for p in ex.pytorch_top3)
        vt = "<br>".join(f"{html.escape(p.name)} {p.p:.2f}" for p in ex.variant_top3)
        examples += (
            f'<figure>{img}<figcaption><b>{html.escape(Path(ex.file).name)}</b><br>'
            f"PyTorch:<br>{pt}<br>{html.escape(dis.variant)}:<br>{vt}</figcaption></figure>"
        )
    chart_divs = "".join(f'<div class="chart" id="chart-{name}"></div>' for name in charts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>quantweb report: {html.escape(report.model['name'])}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem; color: #1d2330; }}
pre {{ background: #f5f7fa; padding: 1rem; overflow-x: auto; font-size: 12px; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }}
.chart {{ min-height: 300px; border: 1px solid #e5e8ee; border-radius: 6px; }}
figure {{ display: inline-block; width: 220px; vertical-align: top; font-size: 12px; }}
figure img {{ width: 112px; }}
</style>
<script>{_plotly_js()}</script>
</head><body>
<h1>Conversion report: {html.escape(report.model['name'])}</h1>
<pre>{html.escape(format_summary(report))}</pre>
<h2>Charts</h2>
<div class="charts">{chart_divs}</div>
{f"<h2>Where {html.escape(dis.variant)} and PyTorch disagree ({dis.count} images)</h2>" + examples if examples else ""}
<script id="report-data" type="application/json">{_script_json(data)}</script>
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
