"""onnx2tf routes: the folded graph is tried first, without onnx2tf's strict mode; the graph as exported
(which onnx2tf mis-converts for 'same' padding) is a later route, retried in strict mode; when every route
fails, the error names the ONNX op and what to do, and nothing is written."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from support.engine_models import same_pad_net

from conversions.engine import pipeline
from conversions.engine.config import ExportConfig, ModelSpec
from conversions.engine.convert import tf_routes as tf_convert
from conversions.engine.errors import ConversionError
from conversions.engine.pipeline import run_export
from conversions.engine.report.results import ExportReport
from engine.conftest import MODELS_FILE, assert_flags_exist

SAME_PAD_SHAPE = (1, 3, 64, 64)


@pytest.fixture(scope="module")
def same_pad_spec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    torch.manual_seed(0)
    ckpt = tmp_path_factory.mktemp("same_pad") / "same_pad.pth"
    torch.save(same_pad_net().state_dict(), ckpt)
    return ModelSpec(str(ckpt), f"{MODELS_FILE}:same_pad_net", input_shape=SAME_PAD_SHAPE, trust_checkpoint=True)


@pytest.fixture(scope="module")
def fallback_report(same_pad_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> ExportReport:
    out = tmp_path_factory.mktemp("fallback")
    return run_export(ExportConfig(model=same_pad_spec, variants=("none",), output_dir=str(out)))


def test_same_padding_model_converts_in_one_fast_pass_over_the_folded_graph(fallback_report: ExportReport) -> None:
    route = fallback_report.conversion_route
    assert route["route"] == "onnxsim+onnx2tf"
    assert route["opset"] == 17  # no GELU: the default opset
    (only,) = route["attempts"]
    assert only["route"] == "onnxsim+onnx2tf" and only["mode"] == "fast" and only["ok"] is True
    assert only["sqnr_vs_onnx_db"] >= tf_convert.ROUTE_MIN_SQNR_DB
    assert set(only["seconds"]) == {"fold", "onnx2tf", "compare", "float32 tflite"}
    assert all(s >= 0 for s in only["seconds"].values()) and only["seconds"]["onnx2tf"] > 0


def test_fallback_route_float32_matches_pytorch(fallback_report: ExportReport) -> None:
    float32 = fallback_report.variant("float32")
    assert float32.fidelity.sqnr_db >= 40
    assert Path(float32.output).is_file()


def test_when_every_route_fails_the_error_names_the_op_and_what_to_do(
    same_pad_spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_direct = tuple(r for r in tf_convert.ROUTES if r.name == "onnx2tf")
    monkeypatch.setattr(pipeline, "convert_to_tf", functools.partial(tf_convert.convert_to_tf, routes=only_direct))
    out = tmp_path / "out"

    with pytest.raises(ConversionError) as err:
        run_export(ExportConfig(model=same_pad_spec, variants=("none",), output_dir=str(out)))

    message = str(err.value)
    assert "onnx2tf could not convert same_pad.onnx at ONNX op /blocks/blocks.1/Add by any of 1 routes" in message
    assert "onnx2tf (fast) failed in onnx2tf at /blocks/blocks.1/Add: ValueError" in message
    assert "onnx2tf (strict) failed in onnx2tf at /blocks/blocks.1/Add: ValueError" in message
    assert "Dimensions must be equal" in message  # the route's own error, not cut mid-sentence
    assert "What to try: " in message and "make both operands 4-D" in message
    assert "export the ONNX file yourself" in message
    assert_flags_exist(message)
    assert not out.exists() or list(out.iterdir()) == []
