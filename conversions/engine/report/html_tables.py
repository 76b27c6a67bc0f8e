"""The variants table, the per-layer table and the disagreement thumbnails as HTML: one rendering that
report.html writes and the portal's run and compare pages include as they are.

Every value from a report is escaped; only ``data:image`` URIs go into an ``<img src>``. The markup's
classes (``variants``, ``num``, ``tag``, ``muted``) are styled by the portal's stylesheet and by report.html's
own inline style.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from conversions.engine.report.tables import layer_columns


def file_size(n: int | None) -> str:
    """Bytes as people read them (1024-based, as the portal's other sizes): 812 bytes, 95.3 KB, 4.6 MB."""
    if n is None:
        return "—"
    size, unit = float(n), "bytes"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{int(size)}\xa0bytes" if unit == "bytes" else f"{size:.1f}\xa0{unit}"


def shrink(ratio: float | None) -> str:
    """The size ratio (variant size / float32 size) as ``3.5× smaller`` (or ``1.3× larger``)."""
    if not ratio:
        return "—"
    if 0.95 < ratio < 1.05:
        return "same"
    return f"{1 / ratio:.1f}× smaller" if ratio < 1 else f"{ratio:.1f}× larger"


def ms(value: float | None) -> str:
    """A latency in milliseconds with as many decimals as a small number needs: 0.024, 1.87, 41.3."""
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def pct(value: float | None) -> str:
    """A percentage, dB or mAP figure with one decimal; a dash when it was not measured."""
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def threads_label(threads: str) -> str:
    return f"{threads} thread{'' if str(threads) == '1' else 's'}"


def value_text(value: Any) -> str:
    """A scalar or short list of a report as text: yes/no, 4 significant digits, a dash for nothing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:12])
        return (shown + f", … ({len(value)} in all)" if len(value) > 12 else shown) or "—"
    return str(value)


@dataclass(frozen=True)
class RowGroup:
    """Rows shown together in one ``<tbody>``; ``lead`` is ready HTML of a cell spanning them (the compare
    page's run), ``attrs`` the ``<tbody>``'s attributes."""

    rows: list[dict[str, Any]]
    lead: str | None = None
    attrs: str = ""


def variants_table(groups: list[RowGroup], threads: list[str], columns: dict[str, bool], lead_title: str = "") -> str:
    """The ``<table class="variants">`` of ``variant_rows``: size, ratio, latency, agreement with its 95%
    interval, SQNR, labeled accuracy or mAP, integer-only and the TFLite Micro arena."""
    body = ""
    for g in groups:
        body += f"<tbody {g.attrs}>" if g.attrs else "<tbody>"
        for i, r in enumerate(g.rows):
            body += '<tr class="reference">' if r.get("reference") else "<tr>"
            body += (g.lead if g.lead is not None and i == 0 else "") + _cells(r, columns) + "</tr>"
        body += "</tbody>"
    return f'<table class="variants{" compare" if lead_title else ""}">{_head(threads, columns, lead_title)}{body}</table>'


def _head(threads: list[str], columns: dict[str, bool], lead_title: str) -> str:
    one = ""
    if lead_title:
        one += f'<th rowspan="2">{escape(lead_title)}</th>'
    one += '<th rowspan="2">Variant</th><th rowspan="2" class="num">Size</th><th rowspan="2" class="num">vs float32</th>'
    two = ""
    if threads:
        one += (f'<th colspan="{len(threads)}" class="group" title="one inference: median / 90th percentile">'
                'Latency <span class="unit">ms, median / p90</span></th>')  # fmt: skip
        two += "".join(f'<th class="num">{escape(threads_label(t))}</th>' for t in threads)
    if columns.get("agreement"):
        one += ('<th colspan="3" class="group" title="held-out images where the variant\'s answer matches PyTorch\'s">'
                'Agreement with PyTorch <span class="unit">%</span></th>')  # fmt: skip
        two += ('<th class="num" title="top-1 classes match; in brackets the 95% Wilson interval">top-1 '
                '<span class="unit">(95% interval)</span></th>'
                '<th class="num" title="top-1 on the images PyTorch classifies with p ≥ 0.5">confident</th>'
                '<th class="num" title="PyTorch\'s top-1 is in the variant\'s top-5">top-5</th>')  # fmt: skip
    one += ('<th rowspan="2" class="num" title="signal-to-quantization-noise ratio of the outputs against PyTorch">'
            'SQNR <span class="unit">dB</span></th>')  # fmt: skip
    if columns.get("accuracy"):
        one += '<th colspan="3" class="group" title="against the dataset\'s labels">Labeled accuracy <span class="unit">%</span></th>'
        two += ('<th class="num">top-1</th><th class="num">top-5</th><th class="num" title="points lost against '
                'PyTorch, top-1 / top-5">drop <span class="unit">pts, top-1 / top-5</span></th>')  # fmt: skip
    if columns.get("detection"):
        one += '<th colspan="3" class="group" title="mean average precision, points 0-100">Detection <span class="unit">mAP</span></th>'
        two += ('<th class="num">@.5</th><th class="num">@.5:.95</th>'
                '<th class="num" title="mAP@0.5:0.95 points lost against PyTorch">drop <span class="unit">pts</span></th>')  # fmt: skip
    one += "<th rowspan=\"2\">Integer only</th>"
    if columns.get("micro"):
        one += ('<th rowspan="2" class="num" title="tensor arena (RAM) the TFLite Micro interpreter allocated">'
                'TFLite Micro <span class="unit">arena</span></th>')  # fmt: skip
    return f'<thead><tr>{one}</tr><tr class="sub">{two}</tr></thead>'


def _cells(r: dict[str, Any], columns: dict[str, bool]) -> str:
    ref = bool(r.get("reference"))
    dash = "" if ref else "—"
    label = ('<span class="tag reference" title="the PyTorch model on the same held-out images">PyTorch</span>'
             if ref else f'<span class="tag">{escape(str(r.get("label")))}</span>')  # fmt: skip
    ratio = r.get("size_ratio")
    out = f"<td>{label}</td>"
    out += f'<td class="num">{file_size(r["size_bytes"]) if r.get("size_bytes") is not None else dash}</td>'
    title = f' title="{ratio * 100:.0f}% of the float32 size"' if ratio else ""
    out += f'<td class="num"{title}>{shrink(ratio) if ratio else dash}</td>'
    for lat in r.get("latency") or []:
        text = f'{ms(lat["median"])} <span class="muted">/ {ms(lat["p90"])}</span>' if lat else dash
        out += f'<td class="num" data-latency>{text}</td>'
    if columns.get("agreement"):
        interval = r.get("top1_interval")
        ci = (f' <span class="muted ci" title="95% Wilson interval on {r.get("samples")} images">'
              f"({interval[0]:.1f}–{interval[1]:.1f})</span>" if interval else "")  # fmt: skip
        n = r.get("confident_samples")
        conf_title = f' title="on {n} image{"" if n == 1 else "s"} PyTorch classifies with p ≥ 0.5"' if n is not None else ""
        out += f'<td class="num">{pct(r.get("top1_agreement"))}{ci}</td>'
        out += f'<td class="num"{conf_title}>{pct(r.get("confident_agreement"))}</td><td class="num">{pct(r.get("top5_agreement"))}</td>'
    out += f'<td class="num">{pct(r.get("sqnr_db"))}</td>'
    if columns.get("accuracy"):
        out += f'<td class="num">{pct(r.get("top1"))}</td><td class="num">{pct(r.get("top5"))}</td>'
        out += _drop(r, r.get("top1_drop"), r.get("top5_drop"), data=True)
    if columns.get("detection"):
        out += f'<td class="num">{pct(r.get("map50"))}</td><td class="num">{pct(r.get("map50_95"))}</td>'
        out += _drop(r, r.get("map_drop"), None, data=False)
    out += f'<td class="nowrap">{_integer_only(r)}</td>'
    if columns.get("micro"):
        out += _micro_cell(r.get("micro"), ref)
    return out


def _drop(r: dict[str, Any], first: float | None, second: float | None, data: bool) -> str:
    worse = " worse" if isinstance(first, (int, float)) and first > 0 else ""
    if r.get("reference"):
        text = '<span class="muted">reference</span>'
    elif first is not None:
        text = f"{first:.1f}" + (f' <span class="muted">/ {second:.1f}</span>' if second is not None else "")
    else:
        text = "—"
    return f'<td class="num drop{worse}"{" data-drop" if data else ""}>{text}</td>'


def _integer_only(r: dict[str, Any]) -> str:
    if r.get("reference"):
        return ""
    if r.get("fully_integer"):
        return "yes"
    ops = r.get("float_ops") or []
    if not ops:
        return "no"
    return (f'no <span class="muted small" title="{escape(", ".join(ops))}">({len(ops)} float '
            f'op{"" if len(ops) == 1 else "s"})</span>')  # fmt: skip


def _micro_cell(micro: dict[str, Any] | None, ref: bool) -> str:
    if micro is None:
        return f'<td class="num">{"" if ref else "—"}</td>'
    title = escape(micro.get("message") or "")
    if not micro["supported"]:
        ops = ", ".join(micro.get("ops") or []) or "see the log"
        return f'<td class="num worse" title="{title}" data-micro>not for microcontrollers <span class="muted small">({escape(ops)})</span></td>'
    exact = "bit-exact" if micro.get("bit_exact") else f"max |diff| {value_text(micro.get('max_abs_diff'))}"
    return f'<td class="num" title="{title}" data-micro>{file_size(micro.get("arena_bytes"))} <span class="muted small">{exact}</span></td>'


def layer_table(rows: list[dict[str, Any]]) -> str:
    """The per-layer error rows (``tables.layer_rows``) as a compact table of the columns any row fills."""
    cols = layer_columns(rows)
    head = "".join(f'<th class="{c}">{escape(title)}</th>' for _, title, c in cols)
    body = ""
    for row in rows:
        cells = ""
        for key, _, cls in cols:
            value = row.get(key)
            code = key in ("label", "module")
            title = f' title="{escape(str(row["name"]))}"' if key == "label" and row.get("name") else ""
            text = "—" if value is None else escape(_truncate(str(value), 60) if code else value_text(value))
            cells += f'<td class="{cls}{" code" if code else ""}"{title}>{text}</td>'
        body += f"<tr>{cells}</tr>"
    return f'<table class="compact layer-errors"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def disagreement_figures(dis: dict[str, Any]) -> str:
    """``tables.disagreements`` as figures: the thumbnail, the file's name, both top-3 by class name."""
    out = ""
    for ex in dis["examples"]:
        name = escape(ex["name"])
        img = (f'<img src="{escape(ex["thumbnail"])}" alt="{name}">' if ex["thumbnail"]
               else '<div class="noimg muted small">no preview</div>')  # fmt: skip
        out += (f'<figure>{img}<figcaption><div class="mono small" title="{name}">{escape(_truncate(ex["name"], 28))}</div>'
                f'<div class="preds"><div><b>PyTorch</b>{_top3(ex["pytorch_top3"])}</div>'
                f'<div><b>{escape(dis["variant"])}</b>{_top3(ex["variant_top3"])}</div></div></figcaption></figure>')  # fmt: skip
    return f'<div class="disagreements">{out}</div>'


def _top3(preds: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<li>{escape(str(p["name"]))} <span class="muted">{p["p"]:.3f}</span></li>' if isinstance(p.get("p"), float)
        else f'<li>{escape(str(p["name"]))}</li>'
        for p in preds
    )  # fmt: skip
    return f"<ol>{items}</ol>"


def device_table(variants: list[Any]) -> str:
    """Per variant (a ``VariantReport``): what its file's metadata says and how it runs in TFLite Micro."""
    body = ""
    for v in variants:
        micro = v.targets.tflite_micro if v.targets else None
        if v.metadata is None and micro is None:
            continue
        meta = "—"
        if v.metadata is not None:
            info = v.metadata.metadata
            image = info.inputs[0] if info.inputs else None
            parts = [f"{info.name} v{info.version}" if info.version else info.name]
            if image is not None:
                parts.append(escape(image.description))
            parts.append(f"labels.txt ({v.metadata.labels_count} classes)" if v.metadata.labels_file else "no labels")
            checks = "read back" + (", same outputs in LiteRT" if v.metadata.outputs_unchanged else "")
            meta = "; ".join(escape(p) if i != 1 else p for i, p in enumerate(parts)) + f' <span class="muted small">({checks})</span>'
        tflm = "—" if micro is None else escape(micro.message)
        cls = ' class="worse"' if micro is not None and not micro.supported else ""
        body += f'<tr><td><span class="tag">{escape(v.variant)}</span></td><td>{meta}</td><td{cls} data-micro>{tflm}</td></tr>'
    if not body:
        return ""
    return ('<table class="compact device"><thead><tr><th>Variant</th><th>Metadata in the file</th>'
            f"<th>TFLite Micro</th></tr></thead><tbody>{body}</tbody></table>")  # fmt: skip


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
