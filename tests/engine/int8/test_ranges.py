"""Activation ranges: minmax reproduces the converter; percentile and mse clip what the histogram says."""

from __future__ import annotations

import numpy as np
import pytest
from support.cli import raises_worded

from conversions.engine.convert.tflite_variant import convert_variant
from conversions.engine.int8.ranges import (
    HISTOGRAM_BINS,
    calibrate,
    choose_ranges,
    quantize,
)
from conversions.engine.report.records import to_json
from conversions.engine.verify.interpreter import TFLiteModel, audit_ops, predict_many


def _histogram(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.histogram(values, bins=HISTOGRAM_BINS, range=(lo, hi))[0]


def test_percentile_and_mse_clip_a_rare_outlier_and_minmax_keeps_it():
    rng = np.random.default_rng(0)
    values = np.concatenate([np.abs(rng.normal(0, 1, 200_000)), [80.0]])  # one spike 80 sigma out
    ranges = {0: (0.0, 80.0)}
    hist = {0: _histogram(values, 0.0, 80.0)}
    assert choose_ranges(ranges, hist, "minmax")[0] == (0.0, 80.0)
    lo, hi = choose_ranges(ranges, hist, "percentile")[0]
    assert lo == 0.0 and 3.0 < hi < 6.0
    # mse weighs the clipped spike by its squared distance, so it narrows the range far less than percentile.
    lo, hi_mse = choose_ranges(ranges, hist, "mse")[0]
    assert lo == 0.0 and hi < hi_mse < 80.0


def test_signed_ranges_keep_zero_inside_and_skipped_tensors_keep_min_max():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 1, 100_000), [-40.0, 40.0]])
    ranges = {0: (-40.0, 40.0), 1: (-40.0, 40.0)}
    hist = {0: _histogram(values, -40, 40), 1: _histogram(values, -40, 40)}
    out = choose_ranges(ranges, hist, "percentile", skip={1})
    assert out[0][0] < 0 < out[0][1] and out[0][1] - out[0][0] < 20
    assert out[1] == (-40.0, 40.0)


def test_minmax_quantization_computes_what_the_converter_int8_computes(spiky_graph):
    """Our sharded min/max pass runs LiteRT's kernels where the converter's calibrator runs TensorFlow's build
    of them: a range may move by a float ulp, which may flip one int8 rounding; nothing more."""
    g = spiky_graph.graph
    converter_int8, _ = convert_variant(g.concrete_function, "int8", spiky_graph.stream)
    cal = calibrate(g.float32_model, spiky_graph.stream, "minmax")
    assert cal.samples == 100 and cal.model == cal.calibrated
    ours = quantize(cal.model)
    x = spiky_graph.evaluation[:32]
    a, b = predict_many(TFLiteModel(ours), x)[0], predict_many(TFLiteModel(converter_int8), x)[0]
    step = float(np.min(np.diff(np.unique(b))))  # one int8 step of the output
    assert np.mean(a != b) <= 0.01 and np.max(np.abs(a - b)) <= step * 1.01


@pytest.mark.parametrize("io_type", ["int8", "uint8"])
def test_integer_io_is_kept(spiky_graph, io_type):
    cal = calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "minmax")
    model = TFLiteModel(quantize(cal.model, io_type))
    assert np.dtype(model.input["dtype"]).name == io_type
    assert audit_ops(quantize(cal.model, io_type))[0]


def test_percentile_ranges_narrow_the_planted_tensor_and_are_recorded(spiky_graph):
    cal = calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "percentile")
    info = to_json(cal.summary())
    assert info["method"] == "percentile" and info["tensors_narrowed"] >= 1
    widest = max(cal.minmax, key=lambda i: cal.minmax[i][1] - cal.minmax[i][0])
    assert cal.ranges[widest][1] < cal.minmax[widest][1]
    assert any(n["name"] == cal.names[widest] for n in info["narrowed"])
    # The graph input's range comes from preprocessing and is left alone.
    input_index = min(cal.minmax)
    assert cal.ranges[input_index] == cal.minmax[input_index]


def test_denylisted_nodes_compute_in_float(spiky_graph):
    cal = calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "minmax")
    from conversions.engine.int8.guard import float_units

    units, names, types = float_units(cal.calibrated)
    conv = next(n for n in names if types[n] == "CONV_2D")
    fully_integer, float_ops, _ = audit_ops(quantize(cal.model, keep_float=[conv]))
    assert not fully_integer
    assert f"CONV_2D({conv})" in float_ops


def test_unknown_method_is_refused(spiky_graph):
    with raises_worded(ValueError, "--calibration"):
        calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "kl")


def test_sharded_min_max_equals_the_calibrators_to_a_float_ulp(spiky_graph):
    import tensorflow as tf

    from conversions.engine.int8.ranges import read_ranges

    g = spiky_graph.graph
    conv = tf.lite.TFLiteConverter.from_concrete_functions([g.concrete_function])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = spiky_graph.stream
    conv._experimental_calibrate_only = True
    full_pass, _, _ = read_ranges(bytes(conv.convert()))
    ours = calibrate(g.float32_model, spiky_graph.stream, "minmax").minmax
    assert set(ours) == set(full_pass)
    for i, (lo, hi) in full_pass.items():
        assert ours[i] == pytest.approx((lo, hi), rel=1e-6, abs=1e-7), i
