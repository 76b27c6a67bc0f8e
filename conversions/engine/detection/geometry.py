"""Where an original image's pixels land in the model input, so boxes can go both ways.

Every preprocessing the data engine offers (letterbox, shorter-side resize + centre crop, exact resize,
plain fit) is an axis-aligned scale plus a shift: ``input = original * scale + offset``. YOLO labels are
normalised ``cx, cy, w, h`` of the *original* (upright) image, so comparing predictions with labels means
inverting exactly the transform ``data.preprocess.resize_and_crop`` applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conversions.engine.data.preprocess import PreprocessSpec


@dataclass(frozen=True)
class InputGeometry:
    """``input_xy = original_xy * (sx, sy) + (dx, dy)`` for one image of size ``width`` x ``height``."""

    width: int
    height: int
    sx: float
    sy: float
    dx: float
    dy: float

    @classmethod
    def for_image(cls, width: int, height: int, spec: PreprocessSpec) -> "InputGeometry":
        """The mapping ``resize_and_crop(image, spec)`` applies to an upright ``width`` x ``height`` image."""
        out_h, out_w = spec.size
        if spec.letterbox:
            ratio = min(out_h / height, out_w / width)
            new_w, new_h = int(round(width * ratio)), int(round(height * ratio))
            left = int(round((out_w - new_w) / 2.0 - 0.1))
            top = int(round((out_h - new_h) / 2.0 - 0.1))
            return cls(width, height, new_w / width, new_h / height, float(left), float(top))
        if isinstance(spec.resize, int):
            ratio = spec.resize / min(width, height)
            cur_w, cur_h = max(1, int(round(width * ratio))), max(1, int(round(height * ratio)))
        elif spec.resize:
            cur_h, cur_w = spec.resize
        else:
            cur_w, cur_h = width, height
        sx, sy, dx, dy = cur_w / width, cur_h / height, 0.0, 0.0
        if spec.crop:
            crop_h, crop_w = min(spec.crop[0], cur_h), min(spec.crop[1], cur_w)
            dx -= int(round((cur_w - crop_w) / 2.0))
            dy -= int(round((cur_h - crop_h) / 2.0))
            cur_w, cur_h = crop_w, crop_h
        fx, fy = out_w / cur_w, out_h / cur_h
        return cls(width, height, sx * fx, sy * fy, dx * fx, dy * fy)

    def label_to_input(self, cx: float, cy: float, w: float, h: float) -> tuple[float, float, float, float]:
        """A normalised YOLO label -> xyxy in input pixels."""
        x0, y0 = (cx - w / 2) * self.width, (cy - h / 2) * self.height
        x1, y1 = (cx + w / 2) * self.width, (cy + h / 2) * self.height
        return (x0 * self.sx + self.dx, y0 * self.sy + self.dy, x1 * self.sx + self.dx, y1 * self.sy + self.dy)

    def input_to_image(self, xyxy: np.ndarray) -> np.ndarray:
        """xyxy boxes in input pixels -> xyxy in original image pixels, clipped to the image."""
        out = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
        out[:, [0, 2]] = np.clip((out[:, [0, 2]] - self.dx) / self.sx, 0, self.width)
        out[:, [1, 3]] = np.clip((out[:, [1, 3]] - self.dy) / self.sy, 0, self.height)
        return out

    def labels_to_image(self, xywhn: np.ndarray) -> np.ndarray:
        """Normalised YOLO ``cx, cy, w, h`` rows -> xyxy in original image pixels."""
        xywhn = np.asarray(xywhn, dtype=np.float64).reshape(-1, 4)
        scale = np.array([self.width, self.height, self.width, self.height], dtype=np.float64)
        cx, cy, w, h = (xywhn * scale).T
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
