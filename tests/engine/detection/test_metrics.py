"""mAP from YOLO labels: matching, AP, and reading label files."""

from __future__ import annotations

import numpy as np
import pytest

from conversions.engine.detection.decode import Detections
from conversions.engine.detection.metrics import (
    MapAccumulator,
    average_precision,
    read_yolo_labels,
)

GT = np.array([[10, 10, 50, 50], [60, 60, 100, 100]], dtype=np.float64)


def dets(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(classes))


def test_perfect_detections_score_100():
    acc = MapAccumulator()
    acc.add(dets(GT.tolist(), [0.9, 0.8], [0, 1]), GT, [0, 1])
    result = acc.result()
    assert (result.map50, result.map50_95, result.instances) == (100.0, 100.0, 2)


def test_a_loose_box_counts_only_at_the_iou_thresholds_it_reaches():
    # IoU with the ground truth is 40*40 / (40*48) = 0.833: a hit at 0.50..0.80 (7 of 10 thresholds).
    acc = MapAccumulator()
    acc.add(dets([[10, 10, 58, 50]], [0.9], [0]), GT[:1], [0])
    result = acc.result()
    assert result.map50 == 100.0
    assert result.map50_95 == pytest.approx(70.0)


def test_the_wrong_class_is_a_miss():
    acc = MapAccumulator()
    acc.add(dets([GT[0].tolist()], [0.9], [1]), GT[:1], [0])
    assert acc.result().map50 == 0.0


def test_a_missed_object_halves_recall_and_ap():
    acc = MapAccumulator()
    acc.add(dets([GT[0].tolist()], [0.9], [0]), GT, [0, 0])
    assert acc.result().map50 == pytest.approx(50.5, abs=0.6)  # 101-point interpolation: recall 0..0.5 of 1.0


def test_a_confident_false_positive_ranked_first_costs_precision():
    acc = MapAccumulator()
    acc.add(dets([[200, 200, 220, 220], GT[0].tolist()], [0.95, 0.9], [0, 0]), GT[:1], [0])
    assert acc.result().map50 == pytest.approx(50.0)


def test_each_ground_truth_box_is_matched_once():
    tp = np.array([[True], [False]])
    assert average_precision(tp, np.array([0.9, 0.8]), num_gt=1)[0] == pytest.approx(1.0)
    acc = MapAccumulator()
    acc.add(dets([GT[0].tolist(), GT[0].tolist()], [0.9, 0.8], [0, 0]), GT[:1], [0])
    assert acc.result().map50 == 100.0  # the duplicate ranks after the hit: precision at full recall is 1


def test_images_without_objects_count_only_their_false_positives():
    acc = MapAccumulator()
    acc.add(dets([GT[0].tolist()], [0.9], [0]), GT[:1], [0])
    acc.add(dets([[5, 5, 20, 20]], [0.95], [0]), np.zeros((0, 4)), [])
    result = acc.result()
    assert result.images == 2 and result.map50 == pytest.approx(50.0)


def test_label_files_boxes_polygons_empty_and_missing(tmp_path):
    boxes = tmp_path / "a.txt"
    boxes.write_text("0 0.5 0.5 0.2 0.4\n\n2 0.1 0.1 0.05 0.05\n")
    cls, xywh = read_yolo_labels(boxes)
    assert cls.tolist() == [0, 2] and xywh[0].tolist() == [0.5, 0.5, 0.2, 0.4]
    polygon = tmp_path / "b.txt"
    polygon.write_text("1 0.1 0.2 0.5 0.2 0.5 0.6\n")
    cls, xywh = read_yolo_labels(polygon)
    assert cls.tolist() == [1] and xywh[0] == pytest.approx([0.3, 0.4, 0.4, 0.4])
    (tmp_path / "empty.txt").write_text("")
    assert read_yolo_labels(tmp_path / "empty.txt")[1].shape == (0, 4)
    assert read_yolo_labels(tmp_path / "missing.txt")[0].shape == (0,)


def test_a_malformed_label_line_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 0.5 0.5 0.2 0.4\n0 0.5 0.5\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        read_yolo_labels(bad)
