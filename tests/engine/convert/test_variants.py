"""Every variant end to end through ``run_export`` on a trained conv net and real JPEGs, with real ``.tflite`` runs.

One conversion serves the whole module (``all_variants``); ``--io int8/uint8`` add one run each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from conversions.engine.pipeline import run_export
from conversions.engine.report.results import ExportReport
from conversions.engine.verify.interpreter import TFLiteModel, audit_ops, predict_many
from engine.conftest import TrainedModel, imagenet_input

VARIANTS = ("none", "float16", "dynamic", "int8", "int16x8")
FILES = {v: f"shapes_net_{'float32' if v == 'none' else v}.tflite" for v in VARIANTS}


@pytest.fixture(scope="module")
def all_variants(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExportReport, Path]:
    out = tmp_path_factory.mktemp("variants")
    return run_export(trained_model.config(variants=VARIANTS, output_dir=str(out))), out


@pytest.fixture(scope="module")
def integer_io(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportReport]:
    """The int8 variant again with ``--io int8`` and ``--io uint8``."""
    out = tmp_path_factory.mktemp("integer_io")
    return {
        io: run_export(trained_model.config(variants=("int8",), io_type=io, output=str(out / f"net_{io}_io.tflite")))
        for io in ("int8", "uint8")
    }


def _eval_inputs_nhwc(report: ExportReport, dataset_dir: Path) -> np.ndarray:
    files = report.evaluation["files"]
    return np.concatenate([imagenet_input(dataset_dir / f) for f in files]).transpose(0, 2, 3, 1).copy()


def test_every_variant_is_written_and_runs_in_the_interpreter(all_variants) -> None:
    report, out = all_variants
    assert [v.variant for v in report.variants] == ["float32", "float16", "dynamic", "int8", "int16x8"]
    for variant, name in FILES.items():
        path = out / name
        assert path.is_file(), variant
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        assert list(detail["shape"]) == [1, 32, 32, 3]
        interpreter.set_tensor(detail["index"], np.zeros((1, 32, 32, 3), dtype=detail["dtype"]))
        interpreter.invoke()
        assert interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).shape == (1, 4)
    assert not list(out.glob("*.partial")) and not list(out.glob(".*.partial"))


def test_float32_matches_pytorch_above_40_db(all_variants) -> None:
    report, _ = all_variants
    fidelity = report.variant("float32").fidelity
    assert fidelity.samples == 32
    assert fidelity.sqnr_db >= 40
    assert fidelity.top1_agreement == 100.0


def test_int8_is_fully_integer_and_under_half_the_float32_size(all_variants) -> None:
    report, out = all_variants
    int8 = report.variant("int8")
    assert int8.fully_integer is True
    assert int8.float_ops == []
    assert (out / FILES["int8"]).stat().st_size == int8.size_bytes
    assert int8.size_bytes / (out / FILES["none"]).stat().st_size < 0.5
    assert audit_ops(out / FILES["int8"])[0] is True


def test_dynamic_and_float16_keep_float_compute(all_variants) -> None:
    report, _ = all_variants
    for name in ("dynamic", "float16"):
        variant = report.variant(name)
        assert variant.fully_integer is False, name
        assert variant.float_ops, name
    assert 0.4 < report.variant("float16").size_ratio < 0.6


def test_quantized_variants_stay_close_to_pytorch(all_variants) -> None:
    report, _ = all_variants
    for name in ("float16", "dynamic", "int8", "int16x8"):
        fidelity = report.variant(name).fidelity
        assert fidelity.top1_agreement >= 90, name
        assert fidelity.sqnr_db >= 20, name
    # 16-bit activations keep more of the signal than 8-bit ones.
    assert report.variant("int16x8").fidelity.sqnr_db > report.variant("int8").fidelity.sqnr_db


def test_latency_is_measured_for_every_variant(all_variants) -> None:
    report, _ = all_variants
    for variant in report.variants:
        stats = variant.latency_ms["1"]
        assert stats.runs >= 30
        assert stats.threads == 1
        assert 0 < stats.median <= stats.p90


def test_report_json_on_disk_has_every_key_the_issue_lists(all_variants, trained_model: TrainedModel) -> None:
    report, out = all_variants
    data = json.loads((out / "report.json").read_text())
    expected = {
        "variant": None,
        "output": None,
        "size_bytes": None,
        "float32_size_bytes": None,
        "input": {"shape", "dtype", "layout", "mean", "std"},
        "latency_ms": {"median", "p90", "threads"},
        "float32_latency_ms": {"median", "p90"},
        "fidelity": {"samples", "top1_agreement", "confident_samples", "confident_top1_agreement",
                     "top5_agreement", "sqnr_db"},
        "float32_fidelity": {"sqnr_db"},
        "fully_integer": None,
        "calibration": {"samples", "seed", "dataset_dir", "layout", "files"},
        "conversion_route": {"route", "attempts"},
        "timings_s": {"load", "onnx", "onnx2tf", "calibrate_convert", "verify", "total"},
        "versions": {"torch", "onnx2tf", "tensorflow", "ai-edge-litert"},
    }  # fmt: skip
    for key, inner in expected.items():
        assert key in data, key
        if inner:
            assert inner <= set(data[key]), (key, inner - set(data[key]))
    # The top level speaks for the most quantized variant asked for.
    assert data["variant"] == "int8"
    assert data["output"] == str(out / FILES["int8"])
    assert data["fully_integer"] is True
    assert data["float32_size_bytes"] == (out / FILES["none"]).stat().st_size
    assert data["input"]["layout"] == "NHWC"
    assert data["input"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert data["input"]["pixel_scale"] == pytest.approx(1 / 255)
    assert data["calibration"]["samples"] == 32
    assert len(data["calibration"]["files"]) == 32
    assert data["calibration"]["dataset_dir"] == str(trained_model.dataset_dir)
    assert data["conversion_route"]["route"] == "onnxsim+onnx2tf"  # folded first, one fast pass
    assert [a["mode"] for a in data["conversion_route"]["attempts"]] == ["fast"]
    assert not set(data["calibration"]["files"]) & set(data["evaluation"]["files"])
    assert len(data["variants"]) == len(VARIANTS)


def test_reported_int8_agreement_matches_an_independent_run(all_variants, trained_model: TrainedModel) -> None:
    """Re-runs the written int8 file on the held-out images with our own preprocessing and interpreter."""
    report, out = all_variants
    inputs = _eval_inputs_nhwc(report, trained_model.dataset_dir)
    interpreter = Interpreter(model_path=str(out / FILES["int8"]))
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    tflite_top1 = []
    for x in inputs:
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        tflite_top1.append(int(interpreter.get_tensor(outp["index"]).argmax()))
    with torch.no_grad():
        torch_top1 = trained_model.module()(torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()

    agreement = 100.0 * float(np.mean(np.array(tflite_top1) == torch_top1))
    reported = report.variant("int8").fidelity
    assert reported.samples == len(inputs) == 32
    assert abs(agreement - reported.top1_agreement) <= 100.0 / len(inputs)  # at most one borderline image apart
    assert len(set(torch_top1.tolist())) == 4  # the held-out images span every class: no all-same predictions


@pytest.mark.parametrize("io", ["int8", "uint8"])
def test_integer_io_has_integer_input_with_real_quantization(integer_io, io: str) -> None:
    report = integer_io[io]
    variant = report.variant("int8")
    interpreter = Interpreter(model_path=variant.output)
    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    assert np.dtype(detail["dtype"]).name == io
    assert np.dtype(interpreter.get_output_details()[0]["dtype"]).name == io
    assert scale > 0
    info = np.iinfo(detail["dtype"])
    assert info.min <= zero_point <= info.max
    # imagenet-normalised pixels span about -2.1..2.6: the input scale covers that range in 256 steps.
    assert 4.0 / 255 < scale < 6.0 / 255
    assert variant.input["dtype"] == io
    assert variant.input["zero_point"] == zero_point
    assert variant.input["scale"] == pytest.approx(scale)
    assert variant.fully_integer is True


@pytest.mark.parametrize("io", ["int8", "uint8"])
def test_integer_io_agrees_with_the_float_io_int8_model(all_variants, integer_io, trained_model, io: str) -> None:
    report, out = all_variants
    inputs = _eval_inputs_nhwc(report, trained_model.dataset_dir)
    float_io = predict_many(TFLiteModel(out / FILES["int8"]), inputs)[0]
    int_model = TFLiteModel(integer_io[io].variant("int8").output)
    int_io = predict_many(int_model, inputs)[0]

    assert (float_io.argmax(1) == int_io.argmax(1)).all()
    output_scale = int_model.io_description()["outputs"][0]["scale"]
    assert np.abs(float_io - int_io).max() <= 2 * output_scale
