"""Per-layer error: every shared tensor compared, PyTorch module names recovered, shares and ranges right."""

from __future__ import annotations

import numpy as np
import pytest

from conversions.engine.int8.layer_error import layer_errors, short_label
from conversions.engine.int8.ranges import calibrate, quantize
from conversions.engine.report.records import to_json


@pytest.fixture(scope="module")
def spiky_layers(spiky_graph):
    cal = calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "minmax")
    int8 = quantize(cal.model)
    g = spiky_graph.graph
    return to_json(layer_errors(cal.calibrated, int8, spiky_graph.calibration[:16], g.onnx_path, g.input_layout))


def test_every_compute_op_is_reported_with_its_pytorch_module(spiky_layers):
    rows = spiky_layers["ops"]
    modules = [r["module"] for r in rows if r["op"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert modules == ["stem", "body", "spiky", "mix", "head", "fc"]
    assert [r["depth"] for r in rows] == list(range(len(rows)))
    assert spiky_layers["module_names"].startswith("matched by value")
    assert all(r["dtype"] == "int8" and not r["in_float"] for r in rows)


def test_per_layer_error_shows_where_the_planted_range_does_its_damage(spiky_layers):
    rows = {r["module"]: r for r in spiky_layers["ops"] if r["module"]}
    # The spiky tensor itself looks fine (its outlier channels dominate its energy) ...
    assert rows["spiky"]["sqnr_db"] > 25
    assert rows["spiky"]["float_max"] > 50 * rows["body"]["float_max"]
    assert rows["spiky"]["scale"] > 30 * rows["body"]["scale"]
    # ... the error shows up one op later, in the consumer: per-layer error alone points at the wrong op.
    worst_added = max(spiky_layers["ops"], key=lambda r: r["added_noise_db"] or 0)
    assert worst_added["module"] == "mix"
    assert rows["mix"]["sqnr_db"] < rows["spiky"]["sqnr_db"] - 10


def test_shares_of_parameters_and_macs(spiky_layers):
    rows = spiky_layers["ops"]
    assert sum(r["param_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
    assert sum(r["mac_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
    by = {r["module"]: r for r in rows if r["module"]}
    assert by["spiky"]["params"] == 32 * 32 * 9 + 32  # 3x3 conv 32->32 with bias
    assert by["spiky"]["macs"] == 8 * 8 * 32 * 32 * 9  # 32x32 input, two stride-2 convs before it
    assert by["fc"]["macs"] == 48 * 10


def test_sqnr_matches_a_direct_comparison_of_the_outputs(spiky_graph, spiky_layers):
    """The last row (the logits) equals the SQNR of the two models' outputs computed independently."""
    from conversions.engine.tensors import sqnr_db
    from conversions.engine.verify.interpreter import TFLiteModel, predict_many

    cal = calibrate(spiky_graph.graph.float32_model, spiky_graph.stream, "minmax")
    samples = spiky_graph.calibration[:16]
    ref = predict_many(TFLiteModel(cal.calibrated), samples)[0].astype(np.float64)
    out = predict_many(TFLiteModel(quantize(cal.model)), samples)[0].astype(np.float64)
    pooled = 10 * np.log10((ref**2).sum() / ((ref - out) ** 2).sum())
    assert spiky_layers["ops"][-1]["sqnr_db"] == pytest.approx(pooled, abs=0.5)
    assert sqnr_db(ref, out) > 0


def test_short_label_names_the_computing_layer_of_a_fused_op():
    name = "model_2/tf.nn.relu6_6/Relu6;model_2/tf.math.add_10/Add;model_2/tf.nn.convolution_6/convolution"
    assert short_label(name) == "tf.nn.convolution_6"
    assert short_label("model_1/tf.math.add_21/Add") == "tf.math.add_21"
