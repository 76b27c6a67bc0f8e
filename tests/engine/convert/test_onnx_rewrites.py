"""A float division by a constant in the exported ONNX file becomes a product by its reciprocal, and only that."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from conversions.engine.convert.onnx_export import export_onnx
from conversions.engine.convert.onnx_rewrites import divisions_as_products
from conversions.engine.convert.torch_rewrites import REWRITE_NOTE


class Divides(nn.Module):
    """A division by a constant, by a per-channel constant tensor, and by a computed value (left alone)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor([2.0, 3.0, 7.0]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x / 6.0) / self.scale + x / (x.abs() + 1.0)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_constant_divisors_become_products_with_the_same_outputs(tmp_path: Path) -> None:
    path = export_onnx(Divides().eval(), (1, 3, 8, 8), tmp_path / "divides.onnx")
    x = np.random.default_rng(0).normal(0, 5, (1, 3, 8, 8)).astype(np.float32)
    before, divs = _run(path, x), _ops(path).count("Div")
    assert divs == 3
    assert divisions_as_products(path) == [
        f"{REWRITE_NOTE}: division by a constant -> product by its reciprocal: 2 ops"
    ]
    assert _ops(path).count("Div") == 1  # x / (|x| + 1) has no constant divisor
    onnx.checker.check_model(onnx.load(str(path)))
    np.testing.assert_allclose(_run(path, x), before, rtol=1e-6, atol=1e-6)


def test_a_graph_without_constant_divisions_is_not_rewritten(tmp_path: Path) -> None:
    path = export_onnx(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), (1, 3, 8, 8), tmp_path / "plain.onnx")
    written = path.read_bytes()
    assert divisions_as_products(path) == []
    assert path.read_bytes() == written


def test_integer_and_zero_divisors_are_left_as_divisions(tmp_path: Path) -> None:
    """Integer Div truncates and x / 0 gives inf: neither is a product by a reciprocal."""
    graph = helper.make_graph(
        [helper.make_node("Div", ["i", "three"], ["io"]), helper.make_node("Div", ["f", "zero"], ["fo"])],
        "divs",
        [helper.make_tensor_value_info("i", TensorProto.INT64, [2]), helper.make_tensor_value_info("f", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("io", TensorProto.INT64, [2]), helper.make_tensor_value_info("fo", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array(3, np.int64), "three"), numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    path = tmp_path / "divs.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert divisions_as_products(path) == []
    assert _ops(path) == ["Div", "Div"]
