"""YOLO-style predictions -> detections: confidence threshold, then class-aware NMS, all in numpy.

A prediction tensor for one image is ``[4 + num_classes (+ extras), N]``: ``cx, cy, w, h`` in input pixels,
then one probability per class, then anything else the head emits (mask coefficients, keypoints), which is
ignored here. No torchvision: the greedy NMS below is the textbook one, with classes kept apart by
offsetting each class's boxes far from the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONF_PREDICT = 0.25
"""Threshold for detections shown or used as a reference (Ultralytics' ``predict`` default)."""
CONF_EVAL = 0.001
"""Threshold for mAP: keep nearly everything so the precision-recall curve is complete (as ``val`` does)."""
IOU_NMS = 0.45
IOU_NMS_EVAL = 0.7
MAX_DETECTIONS = 300
MAX_BOXES_INTO_NMS = 30_000


@dataclass
class Detections:
    """One image's detections: ``boxes`` xyxy ``[n, 4]``, ``scores`` ``[n]``, ``classes`` ``[n]`` (int)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def above(self, conf: float) -> "Detections":
        keep = self.scores >= conf
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    cx, cy, w, h = np.asarray(xywh, dtype=np.float32).reshape(-1, 4).T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: ``[n, 4] x [m, 4] -> [n, m]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS, highest score first."""
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64)
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        if order.size == 1:
            break
        ious = box_iou(boxes[best : best + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    span = float(np.abs(boxes).max()) + 1.0
    shifted = boxes + (classes.astype(np.float64) * 2 * span)[:, None]
    return nms(shifted, scores, iou_threshold)


def decode(
    prediction: np.ndarray,
    num_classes: int,
    conf: float = CONF_PREDICT,
    iou: float = IOU_NMS,
    max_det: int = MAX_DETECTIONS,
) -> Detections:
    """One image's ``[4 + nc (+ extras), N]`` prediction -> its detections (boxes xyxy in input pixels)."""
    pred = np.asarray(prediction, dtype=np.float32)
    if pred.ndim != 2 or pred.shape[0] < 4 + num_classes:
        raise ValueError(f"expected a [4 + {num_classes} (+ extras), N] prediction, got shape {pred.shape}")
    class_scores = pred[4 : 4 + num_classes]
    classes = class_scores.argmax(axis=0)
    scores = class_scores[classes, np.arange(pred.shape[1])]
    candidates = np.nonzero(scores >= conf)[0]
    if candidates.size > MAX_BOXES_INTO_NMS:
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")[:MAX_BOXES_INTO_NMS]]
    if candidates.size == 0:
        return Detections.empty()
    boxes = xywh_to_xyxy(pred[:4, candidates].T)
    keep = batched_nms(boxes, scores[candidates], classes[candidates], iou)[:max_det]
    return Detections(boxes[keep], scores[candidates][keep], classes[candidates][keep].astype(np.int64))


def decode_batch(predictions: np.ndarray, num_classes: int, **kwargs: float) -> list[Detections]:
    """``[B, 4 + nc (+ extras), N]`` -> one ``Detections`` per image."""
    return [decode(p, num_classes, **kwargs) for p in np.asarray(predictions)]
