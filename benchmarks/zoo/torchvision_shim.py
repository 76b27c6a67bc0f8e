"""Makes torchvision's PyPI build importable beside this torch, for benchmarks and tests only.

torchvision's wheel is built against another torch: its compiled ops do not load, and ``import torchvision``
then fails with "operator torchvision::nms does not exist" (its ``_meta_registrations`` module registers
fake kernels for ops that were never defined). The model builders need none of those ops, so before the
import we register an empty ``torchvision._meta_registrations`` and, when the op is missing, define
``torchvision::nms`` with a pure-torch body so ``torchvision.ops.nms`` still works.
Never imported by the engine: torchvision is not a runtime requirement.
"""

from __future__ import annotations

import sys
import types

import torch

_LIB = None  # keeps the torch.library registration alive


def _nms(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    order = scores.argsort(descending=True)
    keep: list[int] = []
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def install() -> None:
    """Idempotent; call before the first ``import torchvision``."""
    global _LIB
    sys.modules.setdefault(
        "torchvision._meta_registrations",
        types.ModuleType("torchvision._meta_registrations"),
    )
    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute lookup raises when the op is missing
        return
    except (AttributeError, RuntimeError):
        pass
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.impl("nms", _nms, "CompositeExplicitAutograd")


def torchvision():
    """``import torchvision`` through the shim."""
    install()
    import torchvision as tv
    import torchvision.extension as ext

    if not ext._has_ops() and hasattr(torch.ops.torchvision, "nms"):
        # Its compiled library did not load, but the op it asserts on is defined above.
        ext._has_ops = lambda: True
    return tv
