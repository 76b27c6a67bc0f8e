"""TFLite Micro readiness: int8 files run in the real TFLite Micro interpreter (the tflite-micro wheel)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conversions.engine.config import ModelSpec
from conversions.engine.pipeline import run_export
from conversions.engine.report.summary import format_summary
from conversions.engine.verify.micro import NOT_FOR_MICRO, micro_readiness

from ..conftest import MODELS_FILE, SMALL_SHAPE


@pytest.fixture(scope="module")
def small_int8(trained_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("micro") / "m_int8.tflite"
    return run_export(trained_model.config(output=str(out))), out.read_bytes()


def test_a_small_int8_model_runs_in_tflite_micro_with_its_arena_and_exactness_reported(small_int8):
    report, content = small_int8
    micro = report.variant("int8").targets.tflite_micro
    assert micro.supported and micro.unsupported_ops == ()
    assert 1_000 < micro.arena_bytes < 1_000_000  # a 32x32 convnet's activations, not the 10x-file default
    assert micro.flash_bytes == len(content)
    assert micro.samples > 0 and micro.max_abs_diff_vs_litert is not None
    assert micro.bit_exact == (micro.max_abs_diff_vs_litert == 0.0)
    assert report.to_dict()["targets"]["tflite_micro"]["arena_bytes"] == micro.arena_bytes
    assert "TFLite Micro" in format_summary(report)
    # Measured again straight from the written file (metadata and labels zip included): the same figures. The
    # run measured the file before its metadata was written (beside the accuracy guard); the new flatbuffer
    # layout moves TFLite Micro's arena by a few bytes of alignment, never more than 64.
    inputs = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    again = micro_readiness(content, inputs, samples=2)
    assert again.supported and abs(again.arena_bytes - micro.arena_bytes) <= 64


def test_a_model_with_an_op_tflite_micro_lacks_is_reported_and_the_run_succeeds(trained_model, tmp_path):
    spec = ModelSpec(str(trained_model.checkpoint), f"{MODELS_FILE}:topk_shift", input_shape=SMALL_SHAPE,
                     trust_checkpoint=True)  # the test suite's own factory file
    config = dataclasses.replace(trained_model.config(output=str(tmp_path / "topk_int8.tflite")), model=spec)
    report = run_export(config)
    micro = report.variant("int8").targets.tflite_micro
    assert not micro.supported
    assert micro.unsupported_ops == ("TOPK_V2",)
    assert NOT_FOR_MICRO in micro.message and "TOPK_V2" in format_summary(report)
    assert (tmp_path / "topk_int8.tflite").is_file()
    assert report.variant("int8").fidelity.top1_agreement is not None


def test_tflite_micro_that_does_not_answer_in_time_is_a_message_not_a_failure(small_int8):
    report, content = small_int8
    inputs = np.zeros((1, 32, 32, 3), np.float32)
    micro = micro_readiness(content, inputs, samples=1, timeout=0.01)  # a spawned child cannot even start in 10 ms
    assert not micro.supported and "did not answer within 0.01 s" in micro.message and NOT_FOR_MICRO in micro.message
    assert report.variant("int8").targets.tflite_micro.supported
