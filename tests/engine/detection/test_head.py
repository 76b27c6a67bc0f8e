"""Finding the box+score concat in the graph, rewriting it, and warning about mixed-range outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from support.cli import raises_worded
from support.detection_data import INPUT_SIZE, TinyYolo

from conversions.engine.config import ExportConfig, ModelSpec
from conversions.engine.convert.onnx_export import export_onnx
from conversions.engine.data.run_inputs import EvaluationSet, PreparedData
from conversions.engine.detection.head import range_warnings
from conversions.engine.detection.head_graph import find_output_concat
from conversions.engine.detection.prepare import prepare_head, resolve_task
from conversions.engine.errors import ConversionError
from conversions.engine.model.loading import LoadedModel

SHAPE = (1, 3, INPUT_SIZE, INPUT_SIZE)


def loaded_model(module: nn.Module, shape: tuple[int, ...] = SHAPE) -> LoadedModel:
    return LoadedModel(module.eval(), "state_dict", shape, type(module).__name__)


def data_for(shape: tuple[int, ...] = SHAPE, count: int = 4) -> PreparedData:
    inputs = np.random.default_rng(0).random((count, *shape[1:]), dtype=np.float32)
    return PreparedData(None, EvaluationSet(inputs, [None] * count, [], "synthetic"), {}, [])


def onnx_outputs(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def config(task: str = "detect", head: str = "auto") -> ExportConfig:
    return ExportConfig(model=ModelSpec(model="tiny"), task=task, detect_head=head)


@pytest.fixture
def tiny_onnx(tmp_path) -> tuple[LoadedModel, Path]:
    torch.manual_seed(0)
    loaded = loaded_model(TinyYolo())
    return loaded, export_onnx(loaded.module, SHAPE, tmp_path / "tiny.onnx")


def test_the_output_concat_is_found_with_each_inputs_channels_and_range(tiny_onnx):
    _, path = tiny_onnx
    concat, why = find_output_concat(path, data_for().evaluation.inputs_nchw)
    assert why == ""
    assert concat.axis == 1
    assert [(i.start, i.stop) for i in concat.inputs] == [(0, 2), (2, 4), (4, 7)]
    assert [i.is_coordinates for i in concat.inputs] == [True, True, False]
    assert concat.inputs[0].high > 10 and 0 <= concat.inputs[2].low and concat.inputs[2].high <= 1


@pytest.mark.parametrize("head", ["normalize", "split"])
def test_the_rewritten_graph_computes_the_planned_outputs_and_merges_back(tiny_onnx, head):
    loaded, path = tiny_onnx
    data = data_for()
    plan = prepare_head("detect", config(head=head), loaded, data, path)
    assert plan.mode == head and plan.onnx_path != path
    x = data.evaluation.inputs_nchw[:1]
    with torch.no_grad():
        original = loaded.module(torch.from_numpy(x)).numpy()
    rewritten = onnx_outputs(plan.onnx_path, x)
    if head == "normalize":
        assert len(rewritten) == 1 and rewritten[0][:, :4].max() <= 1.5
    else:
        assert [o.shape[1] for o in rewritten] == [4, 3]
    clipped = np.clip(original[:, :4], 0, INPUT_SIZE)
    assert np.allclose(plan.merge(rewritten), np.concatenate([clipped, original[:, 4:]], 1), rtol=1e-4, atol=1e-3)
    # The PyTorch reference the pipeline verifies against computes the same thing in float.
    with torch.no_grad():
        reference = plan.loaded.module(torch.from_numpy(x))
    reference = [reference] if isinstance(reference, torch.Tensor) else list(reference)
    assert all(np.allclose(r.numpy(), o, atol=1e-3) for r, o in zip(reference, rewritten))
    assert plan.changes and "Concat" in plan.changes[0]


def test_the_naive_head_is_left_alone_and_warned_about(tiny_onnx):
    loaded, path = tiny_onnx
    plan = prepare_head("detect", config(head="none"), loaded, data_for(), path)
    assert plan.mode == "none" and plan.onnx_path == path
    assert any("span very different ranges" in w for w in plan.warnings)


class CoordsOnly(nn.Module):
    """A detector whose boxes and scores come out of one conv: no concat to rewrite."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 7, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(2) * 50


def test_a_head_without_a_separable_concat_is_reported_not_rewritten(tmp_path):
    loaded = loaded_model(CoordsOnly())
    path = export_onnx(loaded.module, SHAPE, tmp_path / "c.onnx")
    plan = prepare_head("detect", config(), loaded, data_for(), path)
    assert plan.mode == "none"
    assert any("detection head left unchanged" in w and "not by a Concat" in w for w in plan.warnings)


class Classifier(nn.Module):
    def __init__(self, outputs: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_detect_on_a_classifier_output_says_what_shape_is_expected(tmp_path):
    loaded = loaded_model(Classifier())
    path = export_onnx(loaded.module, SHAPE, tmp_path / "cls.onnx")
    with raises_worded(ConversionError, r"--task detect expects .*\[1, 10\].*--task classify"):
        prepare_head("detect", config(), loaded, data_for(), path)


def test_a_classifier_is_left_alone_without_warnings(tmp_path):
    loaded = loaded_model(Classifier())
    path = export_onnx(loaded.module, SHAPE, tmp_path / "cls.onnx")
    plan = prepare_head("classify", config(task="classify"), loaded, data_for(), path)
    assert (plan.mode, plan.onnx_path, plan.warnings) == ("none", path, [])
    assert plan.channel_ranges and plan.channel_ranges[0]["ratio"] < 50


class PixelsAndProbabilities(nn.Module):
    """Not a detector: a regression head returning 0-640 pixels beside 0-1 probabilities in one tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        return torch.cat([pooled * 640, torch.sigmoid(pooled)], 1)


def test_any_model_whose_output_channels_span_very_different_ranges_gets_a_warning(tmp_path):
    loaded = loaded_model(PixelsAndProbabilities())
    path = export_onnx(loaded.module, SHAPE, tmp_path / "mixed.onnx")
    plan = prepare_head("classify", config(task="classify"), loaded, data_for(), path)
    assert len(plan.warnings) == 1 and "one scale" in plan.warnings[0]


def test_range_warnings_measure_per_channel_spans():
    rng = np.random.default_rng(0)
    mixed = np.concatenate([rng.random((8, 4, 100)) * 640, rng.random((8, 3, 100))], 1)
    warnings, report = range_warnings({"output": mixed})
    assert len(warnings) == 1 and report[0]["ratio"] > 50 and report[0]["widest"]["channel"] < 4
    assert range_warnings({"output": rng.random((8, 7, 100))})[0] == []
    constant_class = np.concatenate([rng.random((8, 3, 100)), np.zeros((8, 1, 100))], 1)
    assert range_warnings({"output": constant_class})[0] == []  # a dead channel is not a narrow range


def test_task_auto_is_classify_without_a_yolo_dataset():
    loaded = loaded_model(TinyYolo())
    assert resolve_task(config(task="auto"), loaded) == "classify"
    assert loaded.preprocess_hint is None
    assert resolve_task(config(task="detect"), loaded) == "detect"
    assert loaded.preprocess_hint == "yolo"


class SegmentLike(nn.Module):
    """A segmentation-style head: concat(concat(boxes px, class probabilities), mask coefficients)."""

    names = {0: "a", 1: "b"}

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x).flatten(2)
        detect = torch.cat([feat[:, :4].abs() * 100, feat[:, 4:6].sigmoid()], 1)
        return torch.cat([detect, feat[:, 6:] * 5], 1)


def test_a_nested_concat_with_extras_splits_into_boxes_scores_and_extras(tmp_path):
    torch.manual_seed(0)
    loaded = loaded_model(SegmentLike())
    path = export_onnx(loaded.module, SHAPE, tmp_path / "seg.onnx")
    data = data_for()
    plan = prepare_head("detect", config(head="split"), loaded, data, path)
    assert plan.num_classes == 2 and plan.split_at == (4, 6)
    x = data.evaluation.inputs_nchw[:1]
    rewritten = onnx_outputs(plan.onnx_path, x)
    assert [o.shape[1] for o in rewritten] == [4, 2, 2]
    with torch.no_grad():
        original = loaded.module(torch.from_numpy(x)).numpy()
    assert np.allclose(plan.merge(rewritten)[:, 4:], original[:, 4:], atol=1e-4)
    assert np.allclose(plan.merge(rewritten)[:, :4], np.clip(original[:, :4], 0, INPUT_SIZE), atol=1e-4)
    assert "extras (channels 6-7)" in plan.changes[0]


class ChannelsLast(nn.Module):
    """A head that returns ``[B, anchors, 4 + nc]``: the concat is on the last axis."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 7, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x).flatten(2).transpose(1, 2)
        return torch.cat([feat[..., :4].abs() * 60, feat[..., 4:].sigmoid()], 2)


@pytest.mark.parametrize("head", ["normalize", "split"])
def test_a_channels_last_head_is_rewritten_on_its_last_axis(tmp_path, head):
    torch.manual_seed(0)
    loaded = loaded_model(ChannelsLast())
    path = export_onnx(loaded.module, SHAPE, tmp_path / "last.onnx")
    data = data_for()
    plan = prepare_head("detect", config(head=head), loaded, data, path)
    assert plan.channel_axis == 2 and plan.mode == head
    x = data.evaluation.inputs_nchw[:1]
    with torch.no_grad():
        original = loaded.module(torch.from_numpy(x)).numpy().transpose(0, 2, 1)
    merged = plan.merge(onnx_outputs(plan.onnx_path, x))
    assert merged.shape == (1, 7, 256)
    assert np.allclose(merged[:, 4:], original[:, 4:], atol=1e-4)
    assert np.allclose(merged[:, :4], np.clip(original[:, :4], 0, INPUT_SIZE), atol=1e-3)
