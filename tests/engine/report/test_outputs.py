"""What a run leaves on disk: nothing when it fails, replaced files with --force, and with ``--format all`` the
ONNX file and a SavedModel beside the ``.tflite``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conversions.engine import pipeline
from conversions.engine.pipeline import run_export
from conversions.engine.report import atomic
from conversions.engine.report.results import ExportReport
from engine.conftest import TrainedModel


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.suffix in (".tflite", ".partial", ".json"))


def test_failure_after_conversion_leaves_no_output_or_partial_file(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_verify(*args, **kwargs):
        raise RuntimeError("verification blew up")

    monkeypatch.setattr(pipeline, "verify_variants", broken_verify)
    out = tmp_path / "out"

    with pytest.raises(RuntimeError, match="verification blew up"):
        run_export(trained_model.config(dataset=False, variants=("none", "dynamic"), output_dir=str(out)))

    assert _leftovers(out) == []


def test_failure_while_writing_the_second_variant_leaves_neither(
    trained_model: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = atomic.os.fsync
    calls = []

    def disk_full_on_second_file(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", disk_full_on_second_file)
    out = tmp_path / "out"

    with pytest.raises(OSError, match="No space left"):
        run_export(trained_model.config(dataset=False, variants=("none", "dynamic"), output_dir=str(out)))

    assert len(calls) == 2
    assert _leftovers(out) == []


@pytest.fixture(scope="module")
def forced_all_formats(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportReport, Path]:
    """``--format all --force`` into a folder that already holds stale outputs of every kind."""
    out = tmp_path_factory.mktemp("all_formats")
    (out / "shapes_net_float32.tflite").write_bytes(b"stale")
    (out / "shapes_net.onnx").write_bytes(b"stale")
    (out / "shapes_net_float32_report.json").write_text("{}")
    (out / "shapes_net_saved_model").mkdir()
    (out / "shapes_net_saved_model" / "stale.txt").write_text("stale")
    config = trained_model.config(dataset=False, variants=("none",), output_dir=str(out), formats=("all",), force=True)
    return run_export(config), out


def test_force_replaces_existing_outputs(forced_all_formats) -> None:
    report, out = forced_all_formats
    tflite = out / "shapes_net_float32.tflite"
    assert tflite.read_bytes()[4:8] == b"TFL3"
    assert tflite.stat().st_size == report.variant("float32").size_bytes
    assert json.loads((out / "shapes_net_float32_report.json").read_text())["variant"] == "float32"
    assert not (out / "shapes_net_saved_model" / "stale.txt").exists()
    assert not list(out.glob(".*.partial"))


def test_format_all_writes_onnx_and_saved_model_beside_the_tflite(forced_all_formats, trained_model) -> None:
    import tensorflow as tf

    report, out = forced_all_formats
    assert report.intermediate_files["onnx"] == str(out / "shapes_net.onnx")
    assert report.intermediate_files["saved_model"] == str(out / "shapes_net_saved_model")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = trained_model.module()(torch.from_numpy(x)).numpy()

    session = ort.InferenceSession(str(out / "shapes_net.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, atol=1e-4)

    serving = tf.saved_model.load(str(out / "shapes_net_saved_model")).signatures["serving_default"]
    outputs = serving(input=tf.constant(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(next(iter(outputs.values())).numpy(), expected, atol=1e-4)


def test_format_onnx_alone_needs_no_dataset_writes_no_tflite_and_is_still_verified(trained_model, tmp_path) -> None:
    out = tmp_path / "onnx_only"
    report = run_export(trained_model.config(dataset=False, formats=("onnx",), output_dir=str(out)))
    assert sorted(p.name for p in out.iterdir()) == ["shapes_net.onnx", "shapes_net_report.json"]
    [checked] = report.variants
    assert checked.variant == "float32" and checked.output == ""
    assert checked.fidelity.sqnr_db >= 40, "the exported graph was converted and compared with PyTorch"
