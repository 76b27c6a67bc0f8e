"""Ultralytics checkpoints: recognised without unpickling, a clear error without the extra, exported with it."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import pytest
import torch
from support.cli import raises_worded

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.ultralytics import (
    is_ultralytics_checkpoint,
    load_ultralytics,
)

HAS_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None


def _ultralytics_modules() -> dict:
    return {k: v for k, v in sys.modules.items() if k == "ultralytics" or k.startswith("ultralytics.")}


@pytest.fixture
def lookalike_checkpoint(tmp_path):
    """A torch.save'd pickle of a class from a package named ``ultralytics`` (a stand-in, not the real one)."""
    fake = tmp_path / "fake"
    (fake / "ultralytics" / "nn").mkdir(parents=True)
    (fake / "ultralytics" / "__init__.py").write_text("")
    (fake / "ultralytics" / "nn" / "__init__.py").write_text("")
    (fake / "ultralytics" / "nn" / "tasks.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class DetectionModel(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)
    """))
    real = _ultralytics_modules()
    for name in real:
        del sys.modules[name]
    sys.path.insert(0, str(fake))
    importlib.invalidate_caches()
    path = tmp_path / "yolov8n.pt"
    try:
        from ultralytics.nn.tasks import DetectionModel

        torch.save({"model": DetectionModel(), "train_args": {"imgsz": 640}}, path)
    finally:
        sys.path.remove(str(fake))
        for name in _ultralytics_modules():
            del sys.modules[name]
        sys.modules.update(real)
        importlib.invalidate_caches()
    return path


def test_an_ultralytics_pickle_is_recognised_and_a_state_dict_is_not(lookalike_checkpoint, tmp_path):
    assert is_ultralytics_checkpoint(lookalike_checkpoint)
    plain = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(2)}, plain)
    assert not is_ultralytics_checkpoint(plain)
    assert not is_ultralytics_checkpoint(None)
    assert load_ultralytics(ModelSpec(checkpoint=str(plain))) is None


@pytest.mark.skipif(HAS_ULTRALYTICS, reason="the ultralytics package is installed")
def test_without_the_extra_loading_says_what_to_install(lookalike_checkpoint):
    with pytest.raises(CheckpointError, match=r"Ultralytics checkpoint.*pip install -r requirements-ultralytics.txt"):
        load_ultralytics(ModelSpec(checkpoint=str(lookalike_checkpoint)))


@pytest.mark.skipif(not HAS_ULTRALYTICS, reason="needs `pip install -r requirements-ultralytics.txt`")
def test_an_ultralytics_checkpoint_exports_and_is_scored_by_map(shapes_dataset, tmp_path):
    """A YOLOv8n built from its YAML (no download), saved the way Ultralytics saves, exported end to end."""
    from copy import deepcopy

    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    model.names = {0: "square", 1: "disc", 2: "triangle"}
    path = tmp_path / "yolov8n_shapes.pt"
    torch.save({"model": deepcopy(model).half(), "train_args": {"imgsz": 128}}, path)
    with raises_worded(CheckpointError, "--trust-checkpoint"):
        load_ultralytics(ModelSpec(checkpoint=str(path)))
    from conversions.engine.pipeline import run_export

    report = run_export(ExportConfig(
        model=ModelSpec(checkpoint=str(path), trust_checkpoint=True, input_shape=(1, 3, 128, 128)),
        data=DataSpec(dataset_dir=str(shapes_dataset), num_calib_samples=20, num_eval_samples=10),
        variants=("none", "int8"), output_dir=str(tmp_path / "out"),
    ))
    assert report.model["task"] == "detect" and report.model["load_route"] == "ultralytics"
    int8 = report.variant("int8")
    assert int8.accuracy["reference"] == "labels" and int8.extra["detection"]["head"]["mode"] == "split"
    for variant in report.variants:  # an untrained model finds little; the point is that every stage ran
        assert 0 <= variant.accuracy["map50"] <= 100 and "detection_samples" in int8.extra
