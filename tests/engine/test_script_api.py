"""``ModelExporter``, the script-era API: the same engine behind load_checkpoint/export_to_onnx/export_to_tflite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conversions.engine.data.generator import RepresentativeDataGenerator
from conversions.engine.script_api import ModelExporter
from conversions.engine.verify.interpreter import TFLiteModel, audit_ops, predict_many
from engine.conftest import TrainedModel, imagenet_input


@pytest.fixture(scope="module")
def exported(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("exporter")
    exporter = ModelExporter(trained_model.checkpoint, model=trained_model.model, input_shape=trained_model.input_shape,
                             trust_checkpoint=True)
    calibration = RepresentativeDataGenerator(
        trained_model.dataset_dir, num_samples=16, input_shape=trained_model.input_shape, layout="NHWC", num_workers=0
    )
    try:
        module = exporter.load_checkpoint()
        onnx_path = exporter.export_to_onnx(out / "shapes_net.onnx")
        int8 = exporter.export_to_tflite(
            onnx_path=onnx_path,
            output_path=out / "shapes_net_int8.tflite",
            quantize="int8",
            representative_data_gen=calibration.generate_tflite_batches,
        )
        float32 = exporter.export_to_tflite(onnx_path=onnx_path, output_path=out / "shapes_net.tflite", quantize="none")
    finally:
        exporter.close()
    return {"module": module, "onnx": onnx_path, "int8": int8, "float32": float32}


@pytest.fixture(scope="module")
def images_nchw(trained_model: TrainedModel) -> np.ndarray:
    files = sorted(trained_model.dataset_dir.glob("*/*_01[0-5].jpg"))
    return np.concatenate([imagenet_input(f) for f in files])


def test_load_checkpoint_returns_the_trained_module_in_eval_mode(exported, trained_model, images_nchw) -> None:
    module = exported["module"]
    assert not module.training
    with torch.no_grad():
        torch.testing.assert_close(module(torch.from_numpy(images_nchw)), trained_model.module()(torch.from_numpy(images_nchw)))


def test_export_to_onnx_writes_a_graph_onnxruntime_runs(exported, trained_model, images_nchw) -> None:
    session = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"input": x[None]})[0] for x in images_nchw])
    with torch.no_grad():
        np.testing.assert_allclose(got, trained_model.module()(torch.from_numpy(images_nchw)).numpy(), atol=1e-4)


def test_export_to_tflite_int8_is_fully_integer_and_agrees_with_pytorch(exported, trained_model, images_nchw) -> None:
    path = Path(exported["int8"])
    fully_integer, float_ops, _ = audit_ops(path)
    assert fully_integer, float_ops
    assert path.stat().st_size < 0.5 * Path(exported["float32"]).stat().st_size
    out = predict_many(TFLiteModel(path), images_nchw.transpose(0, 2, 3, 1).copy())[0]
    with torch.no_grad():
        expected = trained_model.module()(torch.from_numpy(images_nchw)).argmax(1).numpy()
    assert (out.argmax(1) == expected).mean() >= 0.9
