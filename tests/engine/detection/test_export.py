"""The trained tiny detector through the whole engine: naive vs head-aware int8, measured by mAP."""

from __future__ import annotations

import base64
import io
import json
import shutil

import pytest
from django.core.management import call_command
from PIL import Image
from support.detection_data import INPUT_SIZE, comparison_rows, export_detector

from conversions.engine.detection.evaluate import variant_drop, variant_metric
from conversions.engine.report.summary import summarize_table


def test_head_aware_int8_keeps_the_map_the_naive_concat_export_loses(head_exports):
    rows = {row["head"]: row for row in comparison_rows(head_exports)}
    print("\n" + summarize_table(list(rows.values())))
    assert rows["none"]["mAP50 float"] > 90, "the test detector should find the shapes"
    assert rows["none"]["drop"] > 8, "one int8 scale for pixels and probabilities should cost the naive export"
    for head in ("normalize", "split"):
        assert rows[head]["drop"] <= 2.0, f"{head}: int8 mAP@0.5 should stay within 2 points of float"
        assert rows[head]["mAP50 int8"] > rows["none"]["mAP50 int8"] + 5


def test_each_variant_reports_map_against_the_labels_and_what_was_changed(head_exports):
    report = head_exports["normalize"]
    assert report.model["task"] == "detect"
    float_map = report.pytorch.detection["map_against_labels"]
    for variant in report.variants:
        acc = variant.accuracy
        assert acc["task"] == "detect" and acc["reference"] == "labels"
        assert acc["pytorch_map50"] == float_map["map50"]
        assert acc["drop_map50"] == pytest.approx(acc["pytorch_map50"] - acc["map50"], abs=0.011)
        assert 0 < acc["map50_95"] <= acc["map50"] <= 100
        assert acc["images"] == report.pytorch.evaluation_samples
        head = variant.extra["detection"]["head"]
        assert head["mode"] == "normalize" and head["coordinate_scale"] == [INPUT_SIZE] * 4
        assert "1/128" in head["changes"][0]
    assert report.variant("float32").accuracy["drop_map50"] == pytest.approx(0, abs=0.5)
    assert report.variant("float32").accuracy["fidelity_map50"] > 99


def test_the_naive_export_is_warned_about(head_exports):
    assert any("span very different ranges" in w for w in head_exports["none"].warnings)
    assert not any("span very different ranges" in w for w in head_exports["normalize"].warnings)


def test_split_outputs_boxes_and_scores_separately(head_exports):
    int8 = head_exports["split"].variant("int8")
    assert sorted(o["shape"][1] for o in int8.output_details["outputs"]) == [3, 4]
    assert int8.extra["detection"]["head"]["exported_shapes"] == [[1, 4, 256], [1, 3, 256]]


def test_the_run_page_gets_pytorch_and_int8_boxes_side_by_side(head_exports):
    samples = head_exports["normalize"].variant("int8").extra["detection_samples"]
    assert len(samples) == 3
    for sample in samples:
        assert sample["image"].startswith("data:image/jpeg;base64,")
        raw = base64.b64decode(sample["image"].split(",", 1)[1])
        assert len(raw) < 40_000
        with Image.open(io.BytesIO(raw)) as picture:
            assert picture.format == "JPEG" and picture.width > 1.8 * picture.height
        assert sample["pytorch_boxes"] >= 1
    assert "detection_samples" not in head_exports["normalize"].variant("float32").extra


def test_the_guard_reads_one_map_figure_per_variant(head_exports):
    int8 = head_exports["normalize"].variant("int8")
    assert variant_metric(int8) == int8.accuracy["map50_95"]
    assert variant_drop(int8) == int8.accuracy["drop_map50_95"]
    assert variant_metric({"accuracy": None}) is None


def test_without_labels_the_pytorch_detections_are_the_reference(detector_checkpoint, shapes_dataset, tmp_path):
    images = tmp_path / "unlabelled"
    images.mkdir()
    for path in sorted((shapes_dataset / "images" / "val").glob("*.jpg"))[:50]:
        shutil.copy(path, images / path.name)
    report = export_detector(detector_checkpoint, images, "auto", tmp_path / "out", calib=30, evaluate=20)
    acc = report.variant("int8").accuracy
    assert acc["reference"] == "pytorch_detections"
    assert acc["pytorch_map50"] == 100.0 and acc["map50"] == acc["fidelity_map50"] > 90
    assert report.variant("float32").accuracy["map50"] > 99
    assert report.pytorch.detection["map_against_labels"] is None


def test_export_models_detects_a_yolo_dataset_and_reports_map(detector_checkpoint, shapes_dataset, tmp_path):
    from support import detection_data as synthetic

    out = tmp_path / "cli"
    printed = io.StringIO()
    call_command(
        "export_models", "--checkpoint", str(detector_checkpoint), "--model", f"{synthetic.__file__}:build", "--trust-checkpoint",
        "--input-size", str(INPUT_SIZE), "--dataset-dir", str(shapes_dataset), "--num-calib-samples", "30",
        "--num-eval-samples", "20", "--output-dir", str(out), "--no-record", stdout=printed, stderr=io.StringIO(),
    )
    assert "mAP50 vs labels" in printed.getvalue(), "the summary table shows the detector's mAP"
    report = json.loads(next(out.glob("*report.json")).read_text())
    assert report["model"]["task"] == "detect"
    assert report["accuracy"]["reference"] == "labels" and report["accuracy"]["map50"] > 85
    assert report["variants"][0]["extra"]["detection"]["head"]["mode"] == "split"
