"""Agreement of a model's outputs with PyTorch's: top-1/top-5, confident top-1, SQNR."""

from __future__ import annotations

import math

import numpy as np

from conversions.engine.report.results import Fidelity
from conversions.engine.tensors import align_layout, sqnr_db

CONFIDENT_PROBABILITY = 0.5


def as_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax unless the rows already are probabilities (a model that ends in softmax)."""
    x = logits.reshape(len(logits), -1).astype(np.float64)
    if x.min() >= 0 and np.allclose(x.sum(axis=1), 1.0, atol=1e-3):
        return x
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def is_classifier_output(ref: np.ndarray) -> bool:
    return ref.ndim == 2 and ref.shape[1] >= 2


def fidelity(reference: np.ndarray, output: np.ndarray) -> Fidelity:
    """Compares one output tensor of a TFLite model with PyTorch's on the same samples."""
    output = align_layout(output, reference.shape)
    sqnr = sqnr_db(reference, output)
    max_err = float(np.abs(reference.astype(np.float64) - output).max()) if reference.size else 0.0
    n = len(reference)
    if not is_classifier_output(reference):
        return Fidelity(n, None, 0, None, None, round(sqnr, 2), max_err)
    ref_top1 = reference.argmax(axis=1)
    out_top1 = output.argmax(axis=1)
    k = min(5, reference.shape[1])
    out_top5 = np.argsort(-output, axis=1)[:, :k]
    confident = as_probabilities(reference).max(axis=1) >= CONFIDENT_PROBABILITY
    agree = ref_top1 == out_top1
    return Fidelity(
        samples=n,
        top1_agreement=_pct(agree.mean()) if n else None,
        confident_samples=int(confident.sum()),
        confident_top1_agreement=_pct(agree[confident].mean()) if confident.any() else None,
        top5_agreement=_pct((out_top5 == ref_top1[:, None]).any(axis=1).mean()) if n else None,
        sqnr_db=round(sqnr, 2),
        max_abs_error=max_err,
    )


def _pct(x: float) -> float:
    return round(float(x) * 100.0, 2)


def top_k(row: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    probs = as_probabilities(row[None])[0]
    idx = np.argsort(-probs)[:k]
    return [(int(i), round(float(probs[i]), 4)) for i in idx]


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``successes / n``, as fractions; None when ``n`` is 0.

    Agreement on a few dozen held-out images is an estimate: 30 of 32 is anything from about 80% to 98%.
    Wilson's interval stays inside [0, 1] and is sound at 0 or n successes, unlike the normal approximation.
    """
    if n <= 0:
        return None
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def output_metrics(reference: np.ndarray, output: np.ndarray, name: str) -> dict:
    """Metrics for one of a model's outputs by what it holds.

    Every output gets its SQNR and the mean cosine similarity of its rows (what matters for an embedding);
    a 4-D ``[N, C, H, W]`` output with several channels is read as a segmentation map: per-pixel argmax
    agreement and the mean IoU of the int8 classes against PyTorch's.
    """
    output = align_layout(output, reference.shape)
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = output.reshape(len(output), -1).astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = float(np.mean(np.where(norms > 0, (ref * out).sum(axis=1) / np.maximum(norms, 1e-30), 1.0)))
    found = {"output": name, "shape": list(reference.shape), "sqnr_db": round(sqnr_db(reference, output), 2)}
    found["cosine"] = round(cosine, 5)
    if reference.ndim == 4 and reference.shape[1] > 1:
        ref_cls, out_cls = reference.argmax(axis=1), output.argmax(axis=1)
        ious = []
        for c in np.union1d(np.unique(ref_cls), np.unique(out_cls)):
            inter = np.logical_and(ref_cls == c, out_cls == c).sum()
            union = np.logical_or(ref_cls == c, out_cls == c).sum()
            ious.append(inter / union)
        found["pixel_agreement"] = _pct((ref_cls == out_cls).mean())
        found["mean_iou"] = round(float(np.mean(ious)), 4)
    return found
