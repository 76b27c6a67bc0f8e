"""Labeled accuracy: class folders -> model outputs, top-1/top-5 for PyTorch and every variant.

The mapping comes from a labels file (one class name per line, in output order) or, by default, the
sorted folder names in output order. A folder that maps to no output is an error listing both sides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError


def read_labels(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"labels file {path} does not exist; pass one class name per line, in output order.")
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"labels file {path} is empty; it needs one class name per line, in output order.")
    return names


def class_to_output(classes: list[str], labels: list[str] | None, num_outputs: int) -> list[int]:
    """Index of each dataset class (in ``classes`` order) among the model's outputs."""
    if labels is None:
        ordered = sorted(classes)
        if len(ordered) > num_outputs:
            raise DatasetError(
                f"the dataset has {len(ordered)} class folders but the model has {num_outputs} outputs; pass "
                "--labels with the model's class names (one per line, in output order)."
            )
        return [ordered.index(c) for c in classes]
    if len(labels) != num_outputs:
        raise DatasetError(
            f"the labels file names {len(labels)} classes but the model has {num_outputs} outputs; it needs one "
            "line per output, in output order."
        )
    lookup = {name.lower(): i for i, name in enumerate(labels)}
    missing = [c for c in classes if c.lower() not in lookup]
    if missing:
        raise DatasetError(
            f"class folder(s) {', '.join(missing[:10])} map to no model output; the labels file has "
            f"{', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}. Rename the folders or fix the labels file."
        )
    return [lookup[c.lower()] for c in classes]


def labeled_accuracy(outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """top-1/top-5 percent over the samples whose target is known (``targets >= 0``)."""
    known = targets >= 0
    if not known.any():
        return {"samples": 0, "top1": None, "top5": None}
    out = outputs[known]
    tgt = targets[known]
    k = min(5, out.shape[1])
    top5 = np.argsort(-out, axis=1)[:, :k]
    return {
        "samples": int(known.sum()),
        "top1": round(float((out.argmax(axis=1) == tgt).mean() * 100), 2),
        "top5": round(float((top5 == tgt[:, None]).any(axis=1).mean() * 100), 2),
    }


def with_drop(variant_acc: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    out = dict(variant_acc)
    for key in ("top1", "top5"):
        if out.get(key) is not None and reference.get(key) is not None:
            out[f"{key}_drop"] = round(reference[key] - out[key], 2)
    return out
