"""Benchmark runs: several variants from one conversion, labeled accuracy, and the report files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from support.benchmark_fixtures import MeanColour, colour_folder, export_program

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.data.generator import RepresentativeDataGenerator
from conversions.engine.errors import DatasetError
from conversions.engine.pipeline import run_export
from conversions.engine.verify.interpreter import TFLiteModel
from conversions.engine.verify.metrics import fidelity


def test_labeled_accuracy_matches_a_hand_count(tmp_path):
    # 12 images; one green image planted in red/: PyTorch and every variant get exactly 11 of 12 right.
    data = colour_folder(tmp_path / "data", {
        "blue": ["blue"] * 4, "green": ["green"] * 4, "red": ["red", "red", "red", "green"],
    })
    # Sorted folders map blue->0, green->1, red->2, so output i must read channel B, G, R.
    ckpt = export_program(MeanColour([2, 1, 0]), tmp_path / "colour.pt2")
    report = run_export(ExportConfig(
        model=ModelSpec(checkpoint=str(ckpt), input_shape=(1, 3, 32, 32)),
        data=DataSpec(dataset_dir=str(data), num_eval_samples=12, num_workers=0),
        variants=("none", "dynamic"),
        output_dir=str(tmp_path / "out"),
    ))
    assert report.pytorch.accuracy == {"samples": 12, "top1": round(11 / 12 * 100, 2), "top5": 100.0}
    for v in report.variants:
        assert v.accuracy["top1"] == round(11 / 12 * 100, 2)
        assert v.accuracy["top1_drop"] == 0.0


def test_a_labels_file_sets_the_output_order_and_unknown_folders_are_named(tmp_path):
    data = colour_folder(tmp_path / "data", {"blue": ["blue"] * 3, "green": ["green"] * 3, "red": ["red"] * 3})
    ckpt = export_program(MeanColour([0, 1, 2]), tmp_path / "colour.pt2")  # outputs read R, G, B
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    config = ExportConfig(
        model=ModelSpec(checkpoint=str(ckpt), input_shape=(1, 3, 32, 32)),
        data=DataSpec(dataset_dir=str(data), num_eval_samples=9, num_workers=0, labels_file=str(labels)),
        variants=("dynamic",),
        output_dir=str(tmp_path / "out"),
    )
    report = run_export(config)
    assert report.pytorch.accuracy["top1"] == 100.0

    labels.write_text("red\ngreen\ncyan\n")
    with pytest.raises(DatasetError) as err:
        run_export(ExportConfig(**{**config.__dict__, "output_dir": str(tmp_path / "out2")}))
    message = str(err.value)
    assert "blue" in message and "cyan" in message and "map to no model output" in message


def test_every_variant_is_written_and_the_table_matches_a_direct_evaluation(benchmark_run):
    config, report, model = benchmark_run
    assert [v.variant for v in report.variants] == ["float32", "float16", "dynamic", "int8", "int16x8"]
    # Rebuild the held-out inputs independently from the files the report lists, as a user would.
    gen = RepresentativeDataGenerator(config.data.dataset_dir, num_samples=12, num_eval_samples=15, seed=0,
                                      input_shape=(1, 3, 32, 32), num_workers=0)
    files = [Path(p).name for p in report.evaluation["files"]]
    inputs = {Path(item.path).name: x for x, item in gen.iter_evaluation()}
    x = np.stack([inputs[f] for f in files])
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    for v in report.variants:
        assert Path(v.output).is_file() and Path(v.output).stat().st_size == v.size_bytes
        tfl = TFLiteModel(v.output)
        outs = np.concatenate([tfl.predict(np.transpose(x[i : i + 1], (0, 2, 3, 1)))[0] for i in range(len(x))])
        direct = fidelity(reference, outs)
        assert direct.top1_agreement == v.fidelity.top1_agreement
        # Above ~100 dB the difference is float rounding order (batched vs single torch calls).
        assert direct.sqnr_db == pytest.approx(v.fidelity.sqnr_db, rel=0.01, abs=0.05)
        assert set(v.latency_ms) == {"1", "2"}
        assert all(s.runs >= 30 for s in v.latency_ms.values())


def test_report_files_sit_beside_the_artifacts(benchmark_run):
    config, report, _ = benchmark_run
    out = Path(config.output_dir)
    data = json.loads((out / "report.json").read_text())
    assert [v["variant"] for v in data["variants"]] == ["float32", "float16", "dynamic", "int8", "int16x8"]
    md = (out / "report.md").read_text()
    for name in ("float32", "float16", "dynamic", "int8", "int16x8"):
        assert f"| {name} |" in md
    html = (out / "report.html").read_text()
    assert "Plotly.newPlot" in html
    # Self-contained: no script or stylesheet is fetched from anywhere (plotly.js is inline).
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", html)
