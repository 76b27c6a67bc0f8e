"""Bias correction: the test model's ``mix`` conv loses its 1/100 weights to int8 rounding; its bias gets it back."""

from __future__ import annotations

import numpy as np
import pytest

from conversions.engine.int8.bias_correction import correct_biases
from conversions.engine.int8.ranges import calibrate, quantize
from conversions.engine.report.records import to_json
from conversions.engine.tensors import sqnr_db
from conversions.engine.verify.interpreter import TFLiteModel, audit_ops, predict_many
from engine.int8.conftest import spiky_config


@pytest.fixture(scope="module")
def corrected(spiky_graph):
    cal = calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "percentile")
    int8 = quantize(cal.model)
    model, info = correct_biases(cal.calibrated, int8, spiky_graph.calibration[:32])
    return cal, int8, model, to_json(info)


def _sqnr(reference: bytes, model: bytes, x: np.ndarray) -> float:
    return sqnr_db(predict_many(TFLiteModel(reference), x)[0], predict_many(TFLiteModel(model), x)[0])


def test_bias_correction_raises_output_sqnr_on_held_out_images(spiky_graph, corrected):
    cal, int8, model, info = corrected
    held_out = spiky_graph.evaluation
    before, after = _sqnr(cal.calibrated, int8, held_out), _sqnr(cal.calibrated, model, held_out)
    assert after > before + 0.5
    assert info["ops"] == 6  # stem, body, spiky, mix, head, fc
    assert info["sqnr_after"] > info["sqnr_before"]
    assert info["seconds"] >= 0 and info["samples"] == 32 and info["passes"] == 1


def test_corrected_file_is_fully_integer_and_only_biases_change(corrected):
    from tensorflow.lite.tools import flatbuffer_utils

    _, int8, model, _ = corrected
    fully_integer, float_ops, _ = audit_ops(model)
    assert fully_integer and not float_ops
    a = flatbuffer_utils.convert_bytearray_to_object(bytearray(int8))
    b = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    changed = [
        t.name.decode() for t, u in zip(a.subgraphs[0].tensors, b.subgraphs[0].tensors)
        if t.buffer and not np.array_equal(a.buffers[t.buffer].data, b.buffers[u.buffer].data)
    ]
    assert changed and all(a.subgraphs[0].tensors[i].type == 2 for i, t in enumerate(a.subgraphs[0].tensors)
                           if t.name.decode() in changed)  # INT32 biases only
    assert abs(len(model) - len(int8)) < 0.01 * len(int8)  # re-serialised: alignment padding only


def test_export_records_bias_correction_on_the_int8_variant(spiky_checkpoint, tmp_path):
    from conversions.engine.pipeline import run_export

    report = run_export(spiky_config(spiky_checkpoint, tmp_path / "spiky_int8.tflite", bias_correction=True))
    info = to_json(report.variant("int8").bias_correction)
    assert info["ops"] == 6 and info["sqnr_after"] > info["sqnr_before"]
    assert report.timings_s["bias_correction"] > 0
    assert audit_ops(tmp_path / "spiky_int8.tflite")[0]


def test_cli_flag_sets_the_config():
    from conversions.management.commands.export_models import Command

    parser = Command().create_parser("manage.py", "export_models")
    base = ["--model", "efficientnet-lite0"]
    assert Command.build_config(vars(parser.parse_args([*base, "--bias-correction"]))).bias_correction is True
    assert Command.build_config(vars(parser.parse_args(base))).bias_correction is False
