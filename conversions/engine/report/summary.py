"""Human-readable summary of an ``ExportReport``: the table the CLI prints and report.md embeds."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from conversions.engine.errors import render
from conversions.engine.report.results import ExportReport, Fidelity, VariantReport
from conversions.engine.report.tables import agreement_interval


def _mb(n: int | None) -> str:
    return f"{n / 1e6:.2f} MB" if n else "-"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}%"


def variant_row(v: VariantReport, float_latency: float | None) -> dict[str, str]:
    lat = v.latency_ms.get("1") or (next(iter(v.latency_ms.values())) if v.latency_ms else None)
    fid = v.fidelity
    ratio = f"{lat.median / float_latency:.2f}x" if lat and float_latency else "-"
    return {
        "variant": v.variant,
        "size": _mb(v.size_bytes),
        "x fp32": f"{v.size_ratio:.3f}" if v.size_ratio else "-",
        "latency ms (p50/p90)": f"{lat.median:.2f}/{lat.p90:.2f}" if lat else "-",
        "x fp32 time": ratio,
        "top-1 agree (95% CI)": _agreement(fid),
        "confident": (f"{_pct(fid.confident_top1_agreement)} of {fid.confident_samples}"
                      if fid and fid.confident_samples else "-"),
        "top-5": _pct(fid.top5_agreement) if fid else "-",
        "SQNR dB": f"{fid.sqnr_db:.1f}" if fid else "-",
        "integer-only": "yes" if v.fully_integer else "no",
        **_micro_cells(v),
        **_accuracy_cells(v),
        **_extra_latency_cells(v),
    }


def _agreement(fid: Fidelity | None) -> str:
    if fid is None or fid.top1_agreement is None:
        return "-"
    interval = agreement_interval(fid.top1_agreement, fid.samples)
    return _pct(fid.top1_agreement) + (f" ({interval[0]:.0f}-{interval[1]:.0f})" if interval else "")


def micro_cell(v: VariantReport) -> str | None:
    """The TFLite Micro arena, "unsupported" or None when the file was not tried there."""
    micro = v.targets.tflite_micro if v.targets else None
    if micro is None:
        return None
    return _mb(micro.arena_bytes) if micro.supported else "unsupported"


def _micro_cells(v: VariantReport) -> dict[str, str]:
    cell = micro_cell(v)
    return {"TFLM arena": cell} if cell else {}


def device_lines(report: ExportReport) -> list[str]:
    """What the files' metadata says and how each int8 file fares in TFLite Micro, one line each."""
    lines = []
    for v in report.variants:
        if v.metadata is not None:
            meta = v.metadata.metadata
            image = meta.inputs[0] if meta.inputs else None
            size = "x".join(str(d) for d in image.image_size) if image and image.image_size else "-"
            labels = f", {v.metadata.labels_count} labels" if v.metadata.labels_file else ", no labels"
            norm = f", mean {_floats(image.mean)} std {_floats(image.std)}" if image and image.mean else ""
            lines.append(f"{v.variant} metadata: {size} {image.color_space if image else ''}{norm}{labels} "
                         f"(read back{' and outputs unchanged' if v.metadata.outputs_unchanged else ''})")  # fmt: skip
        micro = v.targets.tflite_micro if v.targets else None
        if micro is not None:
            lines.append(f"{v.variant}: {micro.message}")
    return lines


def _floats(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{x:.2f}" for x in values) + "]"


def _accuracy_cells(v: VariantReport) -> dict[str, str]:
    acc = v.accuracy or {}
    if acc.get("task") == "detect":
        against = "labels" if acc.get("reference") == "labels" else "PyTorch boxes"
        return {
            f"mAP50 vs {against}": f"{acc['map50']:.1f} ({-acc['drop_map50']:+.1f})",
            f"mAP50-95 vs {against}": f"{acc['map50_95']:.1f} ({-acc['drop_map50_95']:+.1f})",
        }
    if acc.get("top1") is None:
        return {}
    return {
        "acc top-1": f"{acc['top1']:.1f}%",
        "top-1 drop": f"{acc.get('top1_drop', 0):+.1f} pts" if acc.get("top1_drop") is not None else "-",
        "acc top-5": f"{acc['top5']:.1f}%",
    }


def _extra_latency_cells(v: VariantReport) -> dict[str, str]:
    return {
        f"ms @{t} thr": f"{s.median:.2f}/{s.p90:.2f}" for t, s in sorted(v.latency_ms.items(), key=lambda kv: int(kv[0])) if t != "1"
    }


def summary_table(report: ExportReport, markdown: bool = False) -> str:
    reference = report.pytorch.float32_latency_ms.get("1")
    rows = [variant_row(v, reference.median if reference else None) for v in report.variants]
    if not markdown:
        return summarize_table(rows)
    cols = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def format_summary(report: ExportReport, names: Mapping[str, str] | None = None) -> str:
    """The run's summary for a terminal; ``names`` words the inputs a warning names (the CLI passes its flags)."""
    cal = report.calibration or {}
    ev = report.evaluation or {}
    route = report.conversion_route.get("route")
    acc = report.pytorch.accuracy or {}
    float32 = report.pytorch.float32_fidelity
    lines = [
        f"model: {report.model['name']} ({report.model['description']}), input {tuple(report.model['input_shape'])}",
        f"route: {route}; calibration: {cal.get('samples', 0)} images (seed {cal.get('seed', '-')}); "
        f"verified on {ev.get('samples', report.pytorch.evaluation_samples)} held-out inputs; "
        f"float32 .tflite vs PyTorch: SQNR {float32.sqnr_db if float32 else '-'} dB",
        *([f"PyTorch labeled accuracy on {acc['samples']} images: top-1 {acc['top1']:.1f}%, top-5 {acc['top5']:.1f}%"]
          if acc.get("top1") is not None else []),
        "",
        summary_table(report),
    ]
    lines.extend(float_and_guard_lines(report))
    lines.extend(device_lines(report))
    lines.extend(disagreement_lines(report))
    if report.warnings:
        lines.append("")
        lines.extend(f"note: {render(w, names)}" for w in report.warnings)
    outputs = [v.output for v in report.variants if v.output]
    if outputs:
        lines.append("")
        lines.extend(f"wrote {o}" for o in outputs)
    for kind, path in report.intermediate_files.items():
        lines.append(f"wrote {path} ({kind})")
    return "\n".join(lines)


def disagreement_lines(report: ExportReport, limit: int = 3) -> list[str]:
    """A few held-out images where the most quantized variant and PyTorch disagree, by class name."""
    dis = report.pytorch.disagreements
    if dis is None or not dis.examples:
        return []

    def top(preds: Sequence[Any]) -> str:
        return ", ".join(f"{p.name or p.index} {p.p:.2f}" if p.p is not None else str(p.name or p.index) for p in preds)

    lines = [f"{dis.variant} and PyTorch disagree on {dis.count} of {report.pytorch.evaluation_samples} held-out images, e.g.:"]
    for ex in dis.examples[:limit]:
        name = ex.file.replace("\\", "/").rsplit("/", 1)[-1]
        lines.append(f"  {name}: PyTorch {top(ex.pytorch_top3)} | {dis.variant} {top(ex.variant_top3)}")
    return lines


def float_and_guard_lines(report: ExportReport) -> list[str]:
    """Which ops of an integer variant compute in float, and what the accuracy guard said."""
    lines = [f"{v.variant}: {len(v.float_ops)} op(s) compute in float: {', '.join(v.float_ops[:5])}"
             for v in report.variants if v.float_ops and v.variant in ("int8", "int16x8")]  # fmt: skip
    return lines + [f"{v.variant} accuracy guard: {render(v.guard.message)}" for v in report.variants if v.guard and v.guard.message]


def summarize_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width text table of the dict rows (keys of the first row are the columns)."""
    if not rows:
        return ""
    cols = list(rows[0])
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    sep = "  ".join("-" * w for w in widths)
    body = "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells)
    return f"{line}\n{sep}\n{body}"
