"""A model whose int8 node XNNPACK refuses to prepare still runs: on the builtin kernels, and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from conversions.engine.convert.onnx_export import export_onnx
from conversions.engine.convert.tf_routes import convert_to_tf, set_quiet_tf_logging
from conversions.engine.int8.ranges import calibrate, quantize, with_ranges
from conversions.engine.verify.interpreter import TFLiteModel, predict_many


def _refused_int8(tmp_path: Path) -> tuple[bytes, np.ndarray]:
    """A real int8 file XNNPACK refuses to prepare, and inputs for it (NHWC, one per row)."""
    set_quiet_tf_logging()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1)).eval()
    samples = np.random.default_rng(0).normal(size=(8, 3, 16, 16)).astype(np.float32)
    graph = convert_to_tf(export_onnx(net, (1, 3, 16, 16), tmp_path / "n.onnx"), tmp_path, samples)
    nhwc = np.transpose(samples, (0, 2, 3, 1))[:, None]
    cal = calibrate(graph.float32_model, lambda: ([x] for x in nhwc), "minmax")
    # A range like the one a -3.4e38 max-pool padding once gave: an int8 scale near 1e36 on the ReLU's output.
    relu_out = max(cal.minmax, key=lambda i: cal.minmax[i][1] if cal.minmax[i][0] == 0.0 else -1)
    return quantize(with_ranges(cal.calibrated, {relu_out: (-3.0e38, 3.0e38)})), nhwc


def test_an_int8_file_xnnpack_refuses_runs_on_the_builtin_kernels(tmp_path: Path) -> None:
    broken, nhwc = _refused_int8(tmp_path)

    model = TFLiteModel(broken)

    assert model.xnnpack is False  # XNNPACK refused it; the builtin kernels run it
    reference = predict_many(TFLiteModel(broken, xnnpack=False), nhwc[:, 0])[0]
    np.testing.assert_array_equal(predict_many(model, nhwc[:, 0])[0], reference)


def test_the_tflite_micro_check_of_a_file_xnnpack_refuses_still_answers(tmp_path: Path) -> None:
    from conversions.engine.verify.micro import micro_readiness

    broken, nhwc = _refused_int8(tmp_path)
    target = micro_readiness(broken, nhwc[:, 0])
    assert target.message  # a worded result (ready or not), not a RuntimeError from XNNPACK's prepare
