"""One image file -> one preprocessed sample, in the model's layout; runs in the decode workers."""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from conversions.engine.config import parse_input_shape
from conversions.engine.data.preprocess import (
    PreprocessSpec,
    load_image,
    to_layout,
    transform,
)


def resolve_input_shape(
    input_shape: tuple[int, ...] | list[int] | str | None, input_size: int | tuple[int, int], layout: str
) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)) from the model's input shape, which wins over ``input_size``.

    The shape is N,C,H,W; with ``layout="NHWC"`` an N,H,W,C shape (channels last, 1/3/4) is recognised too.
    """
    if input_shape is None:
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        return 3, (int(size[0]), int(size[1]))
    shape = parse_input_shape(input_shape) if isinstance(input_shape, str) else tuple(int(d) for d in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4:
        raise ValueError(f"input shape {shape} must be N,C,H,W (e.g. 1,3,224,224)")
    if layout == "NHWC" and shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4):
        return shape[3], (shape[1], shape[2])
    return shape[1], (shape[2], shape[3])


def decode_file(
    path: str,
    spec: PreprocessSpec,
    layout: str,
    custom: Callable[[Image.Image], np.ndarray] | None,
    max_pixels: int,
) -> np.ndarray:
    """One file -> one preprocessed sample; runs in the worker processes."""
    image = load_image(path, None if custom else spec, spec.channels, max_pixels)
    if custom is None:
        return to_layout(transform(image, spec), layout)
    chw = np.asarray(custom(image))
    if chw.ndim == 2:
        chw = chw[None]
    if chw.ndim != 3:
        raise ValueError(f"the preprocess callable returned shape {chw.shape} for {path}; it must return a CHW array")
    return to_layout(chw, layout)
