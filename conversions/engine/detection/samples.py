"""Small side-by-side pictures for the run page: the PyTorch model's boxes next to a quantized variant's.

Drawn on the model input itself (letterbox bands included), recovered from the preprocessed array, so the
picture shows exactly what both models saw. Returned as JPEG data URIs, a few kilobytes each.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from conversions.engine.detection.decode import Detections

PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))
MAX_SIDE = 320
CAPTION_HEIGHT = 14


def input_image(chw: np.ndarray, spec: dict[str, Any] | None) -> Image.Image:
    """A preprocessed CHW float array back to an RGB picture (undoing ``(x * scale - mean) / std``)."""
    x = np.asarray(chw, dtype=np.float32)
    if spec and spec.get("scale") and spec.get("std") and spec.get("mean") is not None:
        std = np.asarray(spec["std"], np.float32)[:, None, None]
        mean = np.asarray(spec["mean"], np.float32)[:, None, None]
        pixels = (x * std + mean) / float(spec["scale"])
    else:
        pixels = (x - x.min()) / max(float(x.max() - x.min()), 1e-6) * 255
    hwc = np.clip(pixels, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if hwc.shape[2] == 1:
        hwc = hwc[:, :, 0]
    return Image.fromarray(hwc).convert("RGB")


def _panel(image: Image.Image, det: Detections, names: list[str], title: str, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    canvas = Image.new("RGB", (size[0], size[1] + CAPTION_HEIGHT), (255, 255, 255))
    canvas.paste(image.resize(size, Image.Resampling.BILINEAR), (0, CAPTION_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    draw.text((3, 1), f"{title}: {len(det)} boxes", fill=(0, 0, 0))
    for box, score, cls in zip(det.boxes, det.scores, det.classes):
        colour = PALETTE[int(cls) % len(PALETTE)]
        x0, y0, x1, y1 = (float(v) * factor for v in box)
        draw.rectangle((x0, y0 + CAPTION_HEIGHT, x1, y1 + CAPTION_HEIGHT), outline=colour, width=2)
        name = names[int(cls)] if int(cls) < len(names) else str(int(cls))
        label = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x0 + 2, y0 + CAPTION_HEIGHT + 1), label)
        draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=colour)
        draw.text((x0 + 2, y0 + CAPTION_HEIGHT + 1), label, fill=(255, 255, 255))
    return canvas


def side_by_side(
    chw: np.ndarray,
    spec: dict[str, Any] | None,
    left: Detections,
    right: Detections,
    names: list[str],
    titles: tuple[str, str],
) -> str:
    """A JPEG data URI: the input with ``left`` boxes, then the same input with ``right`` boxes."""
    image = input_image(chw, spec)
    factor = min(1.0, MAX_SIDE / max(image.width, image.height)) if max(image.width, image.height) > MAX_SIDE else max(
        1.0, 192 / max(image.width, image.height)
    )
    a = _panel(image, left, names, titles[0], factor)
    b = _panel(image, right, names, titles[1], factor)
    out = Image.new("RGB", (a.width + b.width + 4, a.height), (255, 255, 255))
    out.paste(a, (0, 0))
    out.paste(b, (a.width + 4, 0))
    buffer = io.BytesIO()
    out.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
