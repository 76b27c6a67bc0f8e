"""Decoding YOLO predictions: confidence threshold and class-aware NMS, in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from conversions.engine.detection.decode import (
    Detections,
    batched_nms,
    box_iou,
    decode,
    nms,
    xywh_to_xyxy,
)


def prediction(rows: list[tuple[float, float, float, float, list[float]]]) -> np.ndarray:
    """``[(cx, cy, w, h, [p0, p1, ...]), ...]`` -> a ``[4 + nc, N]`` prediction."""
    return np.array([[cx, cy, w, h, *probs] for cx, cy, w, h, probs in rows], dtype=np.float32).T


def test_box_iou_of_identical_disjoint_and_half_overlapping_boxes():
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float32)
    assert box_iou(a, b)[0] == pytest.approx([1.0, 0.0, 1 / 3])


def test_xywh_becomes_corners():
    assert xywh_to_xyxy(np.array([[10, 20, 4, 6]])).tolist() == [[8, 17, 12, 23]]


def test_nms_keeps_the_best_of_overlapping_boxes_and_the_separate_one():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=np.float32)
    keep = nms(boxes, np.array([0.6, 0.9, 0.5]), iou_threshold=0.5)
    assert keep.tolist() == [1, 2]


def test_nms_is_class_aware():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8])
    assert sorted(batched_nms(boxes, scores, np.array([0, 1]), 0.5).tolist()) == [0, 1]
    assert batched_nms(boxes, scores, np.array([1, 1]), 0.5).tolist() == [0]


def test_decode_thresholds_picks_the_best_class_and_suppresses_duplicates():
    pred = prediction([
        (20, 20, 10, 10, [0.1, 0.9]),
        (21, 20, 10, 10, [0.1, 0.7]),  # duplicate of the first: suppressed
        (60, 60, 8, 8, [0.8, 0.3]),
        (90, 90, 8, 8, [0.2, 0.1]),  # below the threshold
    ])
    det = decode(pred, num_classes=2, conf=0.25, iou=0.45)
    assert det.classes.tolist() == [1, 0]
    assert det.scores == pytest.approx([0.9, 0.8])
    assert det.boxes[0].tolist() == [15, 15, 25, 25]


def test_extra_channels_after_the_classes_are_ignored():
    pred = np.concatenate([prediction([(20, 20, 10, 10, [0.9, 0.1])]), np.full((32, 1), 50.0, np.float32)])
    det = decode(pred, num_classes=2)
    assert det.classes.tolist() == [0] and det.scores == pytest.approx([0.9])


def test_nothing_above_the_threshold_is_an_empty_result():
    det = decode(prediction([(20, 20, 10, 10, [0.01, 0.02])]), num_classes=2)
    assert len(det) == 0 and det.boxes.shape == (0, 4)


def test_a_prediction_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\[4 \+ 3"):
        decode(np.zeros((5, 10)), num_classes=3)


def test_above_keeps_only_confident_detections():
    det = Detections(np.zeros((2, 4), np.float32), np.array([0.3, 0.1], np.float32), np.array([0, 1]))
    assert len(det.above(0.25)) == 1
