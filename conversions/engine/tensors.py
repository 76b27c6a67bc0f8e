"""Array helpers every stage shares: NCHW/NHWC layouts and the SQNR of one output against another."""

from __future__ import annotations

import numpy as np


class LayoutMismatch(ValueError):
    """An output whose shape cannot be brought back to the PyTorch layout."""


def to_tf_layout(x_nchw: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x_nchw, (0, 2, 3, 1))) if layout == "NHWC" and x_nchw.ndim == 4 else x_nchw


def align_layout(out: np.ndarray, ref_shape: tuple[int, ...]) -> np.ndarray:
    """onnx2tf may emit a 4-D output channels-last; bring it back to the PyTorch layout when shapes say so."""
    if out.shape == tuple(ref_shape):
        return out
    if out.ndim == 4 and (out.shape[0], out.shape[3], out.shape[1], out.shape[2]) == tuple(ref_shape):
        return np.transpose(out, (0, 3, 1, 2))
    if out.size == int(np.prod(ref_shape)):
        return out.reshape(ref_shape)
    raise LayoutMismatch(f"output shape {out.shape} cannot be matched to the PyTorch shape {tuple(ref_shape)}")


def sqnr_db(reference: np.ndarray, output: np.ndarray) -> float:
    """Mean over samples of 10*log10(|ref|^2 / |ref-out|^2); identical outputs count as 200 dB."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = output.reshape(len(output), -1).astype(np.float64)
    signal = (ref**2).sum(axis=1)
    noise = ((ref - out) ** 2).sum(axis=1)
    per = np.where(noise > 0, 10 * np.log10(np.maximum(signal, 1e-30) / np.maximum(noise, 1e-30)), 200.0)
    return float(np.clip(per, -100.0, 200.0).mean())
