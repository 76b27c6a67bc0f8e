"""Real inputs for the accuracy-guard tests: the planted-outlier CNN, its weights, and the bundled photos.

Session-scoped: each fixture runs a real conversion (ONNX -> onnx2tf -> TFLite) once and the tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from support.spiky_model import make_weights

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.report.records import to_json

REPO = Path(__file__).resolve().parents[3]
PHOTOS = REPO / "demo" / "photos" / "crops"
SPIKY_MODEL = f"{Path(__file__).resolve().parents[2] / 'support' / 'spiky_model.py'}:build"
SPIKY_SHAPE = (1, 3, 32, 32)
CALIB = 100
EVAL = 188
"""The bundled crops hold 288 photos: 100 calibrate, the other 188 are the held-out evaluation images."""


def spiky_config(checkpoint: Path, output: Path, **kwargs: Any) -> ExportConfig:
    return ExportConfig(
        model=ModelSpec(checkpoint=str(checkpoint), model=SPIKY_MODEL, input_shape=SPIKY_SHAPE, trust_checkpoint=True),
        data=DataSpec(dataset_dir=str(PHOTOS), num_calib_samples=CALIB, num_eval_samples=EVAL),
        variants=("int8",),
        output=str(output),
        latency_runs=30,
        **kwargs,
    )


@pytest.fixture(scope="session")
def spiky_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spiky") / "spiky.pth"
    torch.save(make_weights(), path)
    return path


@dataclass
class GuardedRun:
    report: Any
    output: Path
    config: ExportConfig

    @property
    def int8(self) -> Any:
        return self.report.variant("int8")

    @property
    def guard(self) -> dict[str, Any]:
        return to_json(self.int8.guard)

    @property
    def layers(self) -> dict[str, Any]:
        return to_json(self.int8.layer_errors)


@pytest.fixture(scope="session")
def guarded_spiky(spiky_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> GuardedRun:
    """``export_models --max-drop 1`` on the planted model, default calibration, through the real pipeline."""
    from conversions.engine.pipeline import run_export

    output = tmp_path_factory.mktemp("guarded") / "spiky_int8.tflite"
    config = spiky_config(spiky_checkpoint, output, max_drop=1.0)
    return GuardedRun(run_export(config), output, config)


@dataclass
class SpikyGraph:
    graph: Any
    stream: Any
    calibration: np.ndarray
    evaluation: np.ndarray


@pytest.fixture(scope="session")
def spiky_graph(spiky_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> SpikyGraph:
    """The planted model as a TF graph plus its calibration stream, for tests of the stages one by one."""
    from conversions.engine.convert.onnx_export import export_onnx
    from conversions.engine.convert.tf_routes import convert_to_tf, set_quiet_tf_logging
    from conversions.engine.data.run_inputs import calibration_stream, prepare_data
    from conversions.engine.model.loading import load_model
    from conversions.engine.progress import NullProgress
    from conversions.engine.tensors import to_tf_layout

    set_quiet_tf_logging()
    work = tmp_path_factory.mktemp("spiky_graph")
    config = spiky_config(spiky_checkpoint, work / "unused.tflite")
    loaded = load_model(config.model)
    data = prepare_data(config, loaded, NullProgress())
    onnx_path = export_onnx(loaded.module, loaded.input_shape, work / "spiky.onnx")
    graph = convert_to_tf(onnx_path, work, data.evaluation.inputs_nchw)
    stream = calibration_stream(data, graph.input_layout)
    calibration = np.concatenate([s[0] for s in stream()])
    return SpikyGraph(graph, stream, calibration, to_tf_layout(data.evaluation.inputs_nchw, graph.input_layout))
