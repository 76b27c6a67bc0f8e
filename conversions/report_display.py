"""What the run and compare pages show from a stored report dict: table rows, per-variant details, examples.

A report is data written by whichever engine version ran; newer keys (the accuracy guard's ``guard``,
``layer_errors``, detection metrics) may be missing from older runs or change shape while they are built, so
everything here reads with ``.get`` and shows what is present rather than failing the page.
"""

from __future__ import annotations

from typing import Any

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
LAYER_ALIASES = {"label": ("label", "name", "op_name"), "module": ("module", "pytorch_module")}
WORST_LAYERS = 15
GUARD_TABLES = ("steps", "ranking", "kept_float", "before", "after", "cost", "seconds", "message")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def is_data_image(value: Any) -> bool:
    """Only ``data:image/...`` URIs from a report are put in an ``<img src>``."""
    return isinstance(value, str) and value.startswith("data:image/")


def latency_threads(reports: list[dict[str, Any]]) -> list[str]:
    """Every thread count measured in any of ``reports``, ascending."""
    found = {t for r in reports for v in _list(r.get("variants")) for t in _dict(_dict(v).get("latency_ms"))}
    return sorted(found, key=lambda t: (not str(t).isdigit(), int(t) if str(t).isdigit() else 0, str(t)))


def variant_rows(report: dict[str, Any], threads: list[str]) -> list[dict[str, Any]]:
    """One row per variant (PyTorch first when its accuracy was measured): the columns of the variants table."""
    rows = []
    reference = pytorch_row(report)
    if reference:
        rows.append({**reference, "latency": [None] * len(threads)})
    for v in _list(report.get("variants")):
        v = _dict(v)
        fid, acc, lat = _dict(v.get("fidelity")), _dict(v.get("accuracy")), _dict(v.get("latency_ms"))
        name = str(v.get("variant", "?"))
        rows.append({
            "label": "float32" if name == "none" else name,
            "reference": False,
            "size_bytes": _num(v.get("size_bytes")),
            "size_ratio": _num(v.get("size_ratio")),
            "latency": [_latency(lat.get(t)) for t in threads],
            "top1_agreement": _num(fid.get("top1_agreement")),
            "confident_agreement": _num(fid.get("confident_top1_agreement")),
            "confident_samples": fid.get("confident_samples"),
            "top5_agreement": _num(fid.get("top5_agreement")),
            "sqnr_db": _num(fid.get("sqnr_db")),
            "top1": _num(acc.get("top1")),
            "top5": _num(acc.get("top5")),
            "top1_drop": _num(acc.get("top1_drop")),
            "top5_drop": _num(acc.get("top5_drop")),
            "map50": _num(acc.get("map50")),
            "map50_95": _num(acc.get("map50_95")),
            "map_drop": _num(acc.get("drop_map50_95")),
            "fully_integer": v.get("fully_integer"),
            "float_ops": [str(op) for op in _list(v.get("float_ops"))],
        })  # fmt: skip
    return rows


def pytorch_row(report: dict[str, Any]) -> dict[str, Any] | None:
    """The reference row: PyTorch's labeled accuracy (or mAP against labels); None when none was measured."""
    acc = _dict(_dict(report.get("pytorch")).get("accuracy"))
    detect = next((_dict(v.get("accuracy")) for v in map(_dict, _list(report.get("variants")))
                   if _dict(v.get("accuracy")).get("pytorch_map50_95") is not None), {})  # fmt: skip
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


def _latency(stats: Any) -> dict[str, float | None] | None:
    stats = _dict(stats)
    if not stats:
        return None
    return {"median": _num(stats.get("median")), "p90": _num(stats.get("p90"))}


def disagreements(report: dict[str, Any]) -> dict[str, Any] | None:
    """Where the most quantized variant and PyTorch disagree: examples with a usable thumbnail and both top-3."""
    dis = _dict(_dict(report.get("pytorch")).get("disagreements"))
    examples = []
    for ex in map(_dict, _list(dis.get("examples"))):
        examples.append({
            "file": str(ex.get("file") or ""),
            "name": str(ex.get("file") or "").replace("\\", "/").rsplit("/", 1)[-1],
            "thumbnail": ex.get("thumbnail") if is_data_image(ex.get("thumbnail")) else None,
            "pytorch_top3": _predictions(ex.get("pytorch_top3")),
            "variant_top3": _predictions(ex.get("variant_top3")),
        })  # fmt: skip
    if not dis or not (examples or dis.get("count")):
        return None
    samples = _dict(report.get("pytorch")).get("evaluation_samples")
    return {"variant": str(dis.get("variant") or "?"), "count": dis.get("count"), "samples": samples, "examples": examples}


def _predictions(value: Any) -> list[dict[str, Any]]:
    return [{"name": str(p.get("name", p.get("index", "?"))), "p": _num(p.get("p"))} for p in map(_dict, _list(value))]


def variant_details(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant, what its ``extra`` holds beyond the table: ranges, accuracy guard, per-layer error, detection."""
    out = []
    for v in map(_dict, _list(report.get("variants"))):
        extra = _dict(v.get("extra"))
        if not extra:
            continue
        name = str(v.get("variant", "?"))
        layers = layer_rows(extra.get("layer_errors"))
        detail = {
            "variant": name,
            "calibration": _calibration(extra),
            "guard": guard_summary(extra.get("guard")) if "guard" in extra else None,
            "guard_steps": _table(_list(_dict(extra.get("guard")).get("steps")), exclude=("ops",)),
            "layers": worst_layers(layers),
            "all_layers": layers,
            "layer_columns": layer_columns(layers),
            "layer_count": len(layers),
            "layer_notes": _flat(extra.get("layer_errors"), skip=("ops", "damage_order")),
            "detection": _flat(extra.get("detection"), skip=("head",)),
            "detection_samples": detection_samples(extra.get("detection_samples")),
            "other": _flat({k: val for k, val in extra.items() if k not in KNOWN_EXTRA}),
        }  # fmt: skip
        if any(detail[k] for k in ("calibration", "guard", "layers", "detection", "detection_samples", "other")):
            out.append(detail)
    return out


KNOWN_EXTRA = ("calibration_method", "calibration", "guard", "layer_errors", "detection", "detection_samples")


def _calibration(extra: dict[str, Any]) -> list[tuple[str, Any]]:
    items = _flat(extra.get("calibration"), skip=("narrowed",))
    if extra.get("calibration_method") is not None:
        items.insert(0, ("activation ranges", extra["calibration_method"]))
    return items


def layer_rows(value: Any) -> list[dict[str, Any]]:
    """Per-op rows in depth order, from ``{"ops": [...]}`` or a plain list of op dicts."""
    ops = _dict(value).get("ops") if isinstance(value, dict) else value
    rows = []
    for i, op in enumerate(r for r in _list(ops) if isinstance(r, dict)):
        row = {key: next((op[a] for a in LAYER_ALIASES.get(key, (key,)) if op.get(a) is not None), None)
               for key, _, _ in LAYER_COLUMNS}  # fmt: skip
        row["depth"] = row["depth"] if row["depth"] is not None else i
        row["name"] = op.get("name")
        rows.append(row)
    return rows


def worst_layers(rows: list[dict[str, Any]], limit: int = WORST_LAYERS) -> list[dict[str, Any]]:
    """The ``limit`` ops with the lowest output SQNR (ops without one come last)."""
    return sorted(rows, key=lambda r: (_num(r["sqnr_db"]) is None, _num(r["sqnr_db"]) or 0.0))[:limit]


def layer_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [col for col in LAYER_COLUMNS if any(r.get(col[0]) is not None for r in rows)]


def guard_summary(guard: Any) -> dict[str, list[tuple[str, Any]]]:
    """The accuracy guard as ``(label, text)`` pairs: ``items`` (outcome, drop before and after, ops kept, cost,
    time) and ``more`` (every other scalar it recorded)."""
    if not isinstance(guard, dict):
        return {"items": [("guard", guard)], "more": []}
    g = guard
    items: list[tuple[str, Any]] = []
    if "result" in g:
        items.append(("result", g["result"]))
    if "budget_met" in g:
        items.append(("budget met", {True: "yes", False: "no"}.get(g["budget_met"], "not measurable")))
    if "max_drop" in g:
        items.append(("max drop", f"{g['max_drop']} points"))
    before, after = _dict(g.get("before")), _dict(g.get("after"))
    if before or after:
        metric = g.get("metric_label") or g.get("metric") or "metric"
        items.append(("metric", metric))
        items.append(("drop before → after", f"{_points(before.get('drop'))} → {_points(after.get('drop'))}"))
        if before.get("value") is not None or after.get("value") is not None:
            items.append(("value before → after", f"{before.get('value', '—')} → {after.get('value', '—')}"))
    if "kept_float" in g:
        kept = [_op_name(k) for k in _list(g["kept_float"])]
        share = _num(g.get("kept_float_fraction"))
        count = f"{len(kept)} op{'s' if len(kept) != 1 else ''}"
        if g.get("total_ops"):
            count += f" of {g['total_ops']}"
        if share is not None:
            count += f" ({share * 100:.0f}%)"
        items.append(("kept in float", count + (": " + ", ".join(kept) if kept else "")))
    cost = _dict(g.get("cost"))
    if cost:
        parts = [f"{k.replace('_ratio', '')} ×{cost[k]:g}" for k in ("size_ratio", "latency_ratio") if _num(cost.get(k))]
        items.append(("cost", ", ".join(parts) or _flat_text(cost)))
    seconds = g.get("seconds")
    if isinstance(seconds, dict) and seconds:
        total = seconds.get("total")
        rest = ", ".join(f"{k} {v} s" for k, v in seconds.items() if k != "total")
        items.append(("time", f"{total} s" + (f" ({rest})" if rest else "") if total is not None else rest))
    elif _num(seconds) is not None:
        items.append(("time", f"{seconds} s"))
    if g.get("message"):
        items.append(("summary", g["message"]))
    handled = {"result", "budget_met", "max_drop", "metric", "metric_label", "kept_float_fraction", "total_ops"}
    return {"items": items, "more": _flat({k: v for k, v in g.items() if k not in handled and k not in GUARD_TABLES})}


def _op_name(kept: Any) -> str:
    if isinstance(kept, dict):
        name = kept.get("label") or kept.get("module") or kept.get("name") or "?"
        return f"{name} ({kept['op']})" if kept.get("op") else str(name)
    return str(kept)


def _points(value: Any) -> str:
    return f"{value} points" if value is not None else "—"


def detection_samples(value: Any) -> list[dict[str, Any]]:
    """Each sample's pictures (every ``data:image`` value, side by side) and its other scalar fields."""
    out = []
    for item in map(_dict, _list(value)):
        images = [(k.replace("_image", "").replace("_", " "), v) for k, v in item.items() if is_data_image(v)]
        if images:
            notes = [(_label(k), v) for k, v in item.items() if k != "file" and _scalar(v)]
            out.append({"file": str(item.get("file") or ""), "images": images, "notes": notes})
    return out


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not is_data_image(value)


KEY_LABELS = {"map50": "mAP@.5", "map50_95": "mAP@.5:.95", "sqnr_db": "SQNR dB"}


def _label(key: Any) -> str:
    return KEY_LABELS.get(str(key), str(key).replace("_", " "))


def _flat(value: Any, skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Scalar items of a dict, with one level of nested dicts as ``outer inner``; long lists are summarised."""
    items: list[tuple[str, Any]] = []
    for key, val in _dict(value).items():
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
