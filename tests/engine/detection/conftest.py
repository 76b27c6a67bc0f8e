"""The trained tiny detector and its YOLO dataset, built once per session (training takes ~25 s)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.detection_data import (
    export_detector,
    train_tiny_yolo,
    write_shapes_dataset,
)


@pytest.fixture(scope="session")
def detector_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """State dict of a TinyYolo trained for a few seconds: it finds the shapes (float mAP@0.5 above 90)."""
    path = tmp_path_factory.mktemp("detector") / "tiny_yolo.pth"
    torch.save(train_tiny_yolo().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A YOLO dataset (data.yaml, images/val, labels/val) of 110 labelled images and 4 unlabelled backgrounds."""
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), val=110, background=4, seed=1)


@pytest.fixture(scope="session")
def head_exports(detector_checkpoint: Path, shapes_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """float32 + int8 exports of the detector with each head treatment: naive, normalised, split."""
    out = tmp_path_factory.mktemp("head_exports")
    return {head: export_detector(detector_checkpoint, shapes_dataset, head, out / head) for head in ("none", "normalize", "split")}
