"""The zoo's fast subset through ``benchmarks/bench_zoo.py`` (a one-block ViT included), each model in its own child process as the
benchmark runs it: every one yields a verified, fully integer int8 file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.bench_zoo import run_child  # noqa: E402
from benchmarks.zoo.models import FAST_SUBSET  # noqa: E402

ARGS = argparse.Namespace(calib=16, eval=8, latency_runs=5, timeout=600)


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {name: run_child(name, ARGS) for name in FAST_SUBSET}


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST_SUBSET)
def test_zoo_model_converts_to_a_verified_fully_integer_int8_file(rows: dict[str, dict], name: str) -> None:
    row = rows[name]
    assert row.get("error") is None, row.get("error")
    assert row["float32_sqnr_db"] >= 40
    assert row["int8"], row.get("error")
    if name == "embedding_net":
        # Known gap: F.normalize's tail (SQUARE, SUM, SQRT, MAXIMUM, DIV) stays float, the trunk is integer;
        # the embedding's fidelity is checked below like every model's.
        l2_normalise = {"SQUARE", "SUM", "SQRT", "RSQRT", "MAXIMUM", "DIV", "MUL"}
        assert {op.split("(")[0] for op in row["float_ops"]} - {"QUANTIZE", "DEQUANTIZE"} <= l2_normalise
    else:
        assert row["fully_integer"], row.get("float_ops")
    if name == "tiny_vit":
        # Known gap: the first LayerNorm's RSQRT takes its int8 range from the class token (a random-init
        # 0.02-scale vector: rsqrt ~ 34 where image tokens have ~1), which costs every token precision;
        # keeping exactly those ops in int16 is the open part of the transformer work.
        assert row["int8_sqnr_db"] >= 12
    else:
        assert row["int8_sqnr_db"] >= 15
    assert "xnnpack_refused" not in row["int8_extra"]  # the padded max-pools no longer give a 1e36 scale


@pytest.mark.slow
def test_every_output_of_a_multi_output_model_is_verified(rows: dict[str, dict]) -> None:
    outputs = rows["prelu_facenet"]["int8_extra"]["outputs"]
    assert [o["output"] for o in outputs] == ["output_0", "output_1", "output_2"]
    assert all(o["sqnr_db"] >= 15 and o["cosine"] > 0.99 for o in outputs)
    assert rows["prelu_facenet"]["int8_sqnr_db"] == min(o["sqnr_db"] for o in outputs)


@pytest.mark.slow
def test_yolov8_style_anchors_convert_through_onnxruntime_folding(rows: dict[str, dict]) -> None:
    assert rows["yolov8_style"]["route"] == "ortfold+onnx2tf"


@pytest.mark.slow
def test_the_tiny_transformer_is_integer_with_the_builtin_gelu_in_one_fast_pass(rows: dict[str, dict]) -> None:
    row = rows["tiny_vit"]
    assert row["route"] == "onnxsim+onnx2tf" and row["opset"] == 20  # GELU as one node, no pseudo-op route
    assert {"GELU", "SOFTMAX", "BATCH_MATMUL", "RSQRT", "FULLY_CONNECTED"} <= set(row["int8_ops"])
    assert not {"EXP", "DIV", "NEG"} & set(row["int8_ops"])  # no Erf polynomial
    # LayerNorm's means as FULLY_CONNECTED, not the MEAN / SQUARED_DIFFERENCE XNNPACK lacks in int8
    assert not {"MEAN", "SQUARED_DIFFERENCE"} & set(row["int8_ops"])
