"""Labeled accuracy: class folders -> model outputs, top-1/top-5 for PyTorch and every variant.

The mapping comes from a labels file (one class name per line, in output order) or, by default, the
sorted folder names in output order. A folder that maps to no output is an error listing both sides.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
