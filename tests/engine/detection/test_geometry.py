"""Boxes go through the same geometry as the pixels: labels into the input, predictions back to the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conversions.engine.data.preprocess import build_spec, transform
from conversions.engine.detection.geometry import InputGeometry


def white_box_image(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", size, (0, 0, 0))
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(255, 255, 255))
    return image


def bright_extent(chw: np.ndarray) -> tuple[int, int, int, int]:
    """xyxy (exclusive) of the pixels above half brightness in a preprocessed CHW array."""
    ys, xs = np.nonzero(chw.mean(axis=0) > chw.mean(axis=0).max() / 2)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(
    "preset, size, overrides",
    [("yolo", (200, 120), None), ("yolo", (90, 160), None), ("imagenet", (200, 120), None),
     ("imagenet", (120, 200), {"resize": (128, 128)})],
)
def test_a_label_lands_where_the_engine_puts_its_pixels(preset, size, overrides):
    spec = build_spec(preset, (128, 128), 3, overrides=overrides)
    box = (int(size[0] * 0.3), int(size[1] * 0.25), int(size[0] * 0.7), int(size[1] * 0.8))
    chw = transform(white_box_image(size, box), spec)
    geometry = InputGeometry.for_image(size[0], size[1], spec)
    w, h = size
    label = ((box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h, (box[2] - box[0]) / w, (box[3] - box[1]) / h)
    expected = geometry.label_to_input(*label)
    assert np.allclose(bright_extent(chw), expected, atol=1.5)


def test_the_letterbox_inverse_brings_input_boxes_back_to_image_pixels():
    spec = build_spec("yolo", (128, 128), 3)
    geometry = InputGeometry.for_image(200, 120, spec)
    label = np.array([[0.4, 0.5, 0.2, 0.3]])
    image_box = geometry.labels_to_image(label)
    assert image_box[0].tolist() == pytest.approx([60, 42, 100, 78])
    as_input = np.array([geometry.label_to_input(*label[0])])
    assert geometry.input_to_image(as_input)[0] == pytest.approx(image_box[0])


def test_predictions_in_the_letterbox_bands_are_clipped_to_the_image():
    geometry = InputGeometry.for_image(200, 100, build_spec("yolo", (128, 128), 3))
    assert geometry.dy == 32  # 200x100 -> 128x64, padded 32 above and below
    clipped = geometry.input_to_image(np.array([[-5, 0, 140, 128]]))[0]
    assert clipped.tolist() == [0, 0, 200, 100]
