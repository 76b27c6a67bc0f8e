"""mAP@0.5 and mAP@0.5:0.95 from YOLO label files, COCO-style.

Per class, predictions of all images are ranked by score; each is a true positive at an IoU threshold when
it overlaps an unmatched ground-truth box of its class by at least that IoU (greedy in score order, as
pycocotools does). AP is the area under the monotone precision envelope sampled at 101 recall points;
mAP averages it over the classes that have ground truth. Figures are returned in points (0-100).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from conversions.engine.detection.decode import Detections, box_iou

IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def read_yolo_labels(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(classes [n], xywhn [n, 4])`` from a YOLO label file; a missing or empty file means no objects.

    Segment labels (``class x1 y1 x2 y2 ...``) become the box around their polygon, as Ultralytics does.
    """
    classes: list[int] = []
    boxes: list[list[float]] = []
    if not os.path.isfile(path):
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float64)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise ValueError(f"{path}:{number}: not a YOLO label line (class cx cy w h): {line.strip()[:80]!r}") from None
            if len(values) == 5:
                boxes.append(values[1:])
            elif len(values) >= 7 and len(values) % 2 == 1:
                xs, ys = values[1::2], values[2::2]
                x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
                boxes.append([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
            else:
                raise ValueError(f"{path}:{number}: {len(values)} numbers; a YOLO label has 5 (or a polygon: 1 + 2k)")
            classes.append(int(values[0]))
    return np.asarray(classes, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4)


def match_detections(det: Detections, gt_boxes: np.ndarray, gt_classes: np.ndarray) -> np.ndarray:
    """``[n_det, 10]`` booleans: is detection i a true positive at IoU threshold t (same image)."""
    tp = np.zeros((len(det), len(IOU_THRESHOLDS)), dtype=bool)
    if len(det) == 0 or len(gt_boxes) == 0:
        return tp
    ious = box_iou(det.boxes, gt_boxes)
    ious[det.classes[:, None] != gt_classes[None, :]] = 0.0
    order = np.argsort(-det.scores, kind="stable")
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt_boxes), dtype=bool)
        for i in order:
            candidates = np.where(taken, -1.0, ious[i])
            j = int(candidates.argmax())
            if candidates[j] >= threshold - 1e-9:
                taken[j] = True
                tp[i, t] = True
    return tp


def average_precision(tp: np.ndarray, scores: np.ndarray, num_gt: int) -> np.ndarray:
    """AP per IoU threshold for one class: ``tp [n, T]``, ``scores [n]`` -> ``[T]`` in 0-1."""
    if num_gt == 0:
        return np.zeros(tp.shape[1] if tp.ndim == 2 else len(IOU_THRESHOLDS))
    if len(scores) == 0:
        return np.zeros(len(IOU_THRESHOLDS))
    order = np.argsort(-scores, kind="stable")
    tps = np.cumsum(tp[order], axis=0)
    fps = np.cumsum(~tp[order], axis=0)
    recall = tps / num_gt
    precision = tps / np.maximum(tps + fps, 1e-12)
    out = np.zeros(tp.shape[1])
    for t in range(tp.shape[1]):
        envelope = np.maximum.accumulate(precision[::-1, t])[::-1]
        idx = np.searchsorted(recall[:, t], RECALL_POINTS, side="left")
        sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
        out[t] = sampled.mean()
    return out


@dataclass
class MapResult:
    map50: float
    map50_95: float
    images: int
    instances: int
    per_class_map50_95: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "map50": self.map50,
            "map50_95": self.map50_95,
            "images": self.images,
            "instances": self.instances,
            "per_class_map50_95": {str(k): v for k, v in self.per_class_map50_95.items()},
        }


class MapAccumulator:
    """Collects (detections, ground truth) per image, then ``result()`` gives mAP in points."""

    def __init__(self) -> None:
        self._tp: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._classes: list[np.ndarray] = []
        self._gt_classes: list[np.ndarray] = []
        self.images = 0

    def add(self, det: Detections, gt_boxes: np.ndarray, gt_classes: np.ndarray) -> None:
        """``gt_boxes`` xyxy in the same pixel space as ``det.boxes``."""
        gt_classes = np.asarray(gt_classes, np.int64).reshape(-1)
        self._tp.append(match_detections(det, np.asarray(gt_boxes, np.float64).reshape(-1, 4), gt_classes))
        self._scores.append(np.asarray(det.scores, np.float64))
        self._classes.append(np.asarray(det.classes, np.int64))
        self._gt_classes.append(gt_classes)
        self.images += 1

    def result(self) -> MapResult:
        gt = np.concatenate(self._gt_classes) if self._gt_classes else np.zeros(0, np.int64)
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, len(IOU_THRESHOLDS)), bool)
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0)
        classes = np.concatenate(self._classes) if self._classes else np.zeros(0, np.int64)
        per_class: dict[int, np.ndarray] = {}
        for cls in np.unique(gt):
            mine = classes == cls
            per_class[int(cls)] = average_precision(tp[mine], scores[mine], int((gt == cls).sum()))
        if not per_class:
            return MapResult(0.0, 0.0, self.images, 0)
        aps = np.stack(list(per_class.values()))
        return MapResult(
            map50=_points(aps[:, 0].mean()),
            map50_95=_points(aps.mean()),
            images=self.images,
            instances=int(len(gt)),
            per_class_map50_95={k: _points(v.mean()) for k, v in per_class.items()},
        )


def _points(x: float) -> float:
    return round(float(x) * 100.0, 2)
