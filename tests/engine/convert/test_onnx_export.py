"""PyTorch -> ONNX: the opset follows the graph (GELU as one node), and the folded route turns the ops
onnx2tf would leave dynamic (uneven splits) into ones TFLite has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn

from conversions.engine.convert.onnx_export import DEFAULT_OPSET, GELU_OPSET, export_onnx, exported_opset
from conversions.engine.convert.tf_routes import convert_to_tf, set_quiet_tf_logging
from conversions.engine.convert.tflite_variant import convert_variant
from conversions.engine.verify.interpreter import audit_ops


class GeluMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.conv(x).mean((2, 3)))


class UnevenSplit(nn.Module):
    """MobileViTv2's ``torch.split(qkv, [1, d, d])``: sizes that onnx2tf makes a ``tf.SplitV`` unless folded."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(3, 1 + 2 * 6, 1)
        self.out = nn.Conv2d(6, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = torch.split(self.qkv(x), [1, 6, 6], dim=1)
        return self.out(torch.relu(k) * v + q)


def _op_types(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_a_model_with_gelu_is_exported_at_opset_20_as_one_gelu_node(tmp_path: Path) -> None:
    path = export_onnx(GeluMLP().eval(), (1, 3, 16, 16), tmp_path / "gelu.onnx")
    assert exported_opset(path) == GELU_OPSET
    assert "Gelu" in _op_types(path) and "Erf" not in _op_types(path)


def test_a_model_without_gelu_keeps_the_default_opset(tmp_path: Path) -> None:
    path = export_onnx(UnevenSplit().eval(), (1, 3, 16, 16), tmp_path / "split.onnx")
    assert exported_opset(path) == DEFAULT_OPSET


def _int8_ops(module: nn.Module, tmp_path: Path) -> tuple[str, set[str], bool]:
    torch.manual_seed(0)
    set_quiet_tf_logging()
    path = export_onnx(module.eval(), (1, 3, 16, 16), tmp_path / "m.onnx")
    samples = np.random.default_rng(0).normal(size=(8, 3, 16, 16)).astype(np.float32)
    graph = convert_to_tf(path, tmp_path, samples)
    nhwc = np.transpose(samples, (0, 2, 3, 1)) if graph.input_layout == "NHWC" else samples

    def stream():
        for i in range(len(nhwc)):
            yield [nhwc[i : i + 1]]

    model, _ = convert_variant(graph.concrete_function, "int8", stream, io_type="int8")
    fully_integer, _, counts = audit_ops(model)
    return graph.route, set(counts), fully_integer


def test_gelu_becomes_the_builtin_int8_gelu_without_pseudo_ops(tmp_path: Path) -> None:
    route, ops, fully_integer = _int8_ops(GeluMLP(), tmp_path)
    assert "pseudo" not in route
    assert "GELU" in ops
    assert fully_integer and not ops & {"EXP", "DIV", "NEG"}, ops  # no Erf polynomial


def test_an_uneven_split_converts_to_int8_through_the_folded_route(tmp_path: Path) -> None:
    route, ops, fully_integer = _int8_ops(UnevenSplit(), tmp_path)
    assert route == "onnxsim+onnx2tf"
    assert fully_integer and "SPLIT_V" not in ops, ops


class FunctionalGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(self.fc(x.flatten(1)[:, :4]))


def test_functional_gelu_is_found_in_the_exported_graph_and_re_exported_at_opset_20(tmp_path: Path) -> None:
    path = export_onnx(FunctionalGelu().eval(), (1, 1, 2, 2), tmp_path / "fgelu.onnx")
    assert exported_opset(path) == GELU_OPSET
    assert "Gelu" in _op_types(path) and "Erf" not in _op_types(path)
