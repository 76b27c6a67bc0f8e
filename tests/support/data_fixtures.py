"""Builders of real image trees on disk for the representative-data tests (imported by conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (40, 30), color: int | tuple[int, ...] = (128, 64, 32),
                mode: str = "RGB", fmt: str | None = None, **save_kwargs) -> Path:
    """Writes a solid-colour image of ``size`` (W, H); the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, fmt, **save_kwargs)
    return path


def write_noise(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A JPEG/PNG of random pixels (so decode and resize do real work)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90) if path.suffix == ".jpg" else Image.fromarray(pixels).save(path)
    return path


def build_imagefolder(root: Path, counts: dict[str, dict[str, int]] | dict[str, int], ext: str = ".jpg") -> Path:
    """``{"val": {"cat": 3}}`` -> root/val/cat/0.jpg...; ``{"cat": 3}`` -> a bare ImageFolder."""
    for key, value in counts.items():
        if isinstance(value, dict):
            for cls, n in value.items():
                for i in range(n):
                    suffix = ext if i % 2 == 0 else (".png" if ext == ".jpg" else ext)
                    write_image(root / key / cls / f"{cls}_{i:03d}{suffix}", color=(i * 7 % 256, 10, 20))
        else:
            for i in range(value):
                write_image(root / key / f"{key}_{i:03d}{ext}", color=(i * 7 % 256, 10, 20))
    return root


def build_yolo(root: Path, splits: dict[str, int], style: str = "images_first") -> Path:
    """A YOLO tree with a label file per image: ``images/<split>/`` or ``<split>/images/``."""
    for split, n in splits.items():
        for i in range(n):
            if style == "images_first":
                img, lbl = root / "images" / split / f"{i:03d}.jpg", root / "labels" / split / f"{i:03d}.txt"
            else:
                img, lbl = root / split / "images" / f"{i:03d}.jpg", root / split / "labels" / f"{i:03d}.txt"
            write_image(img, size=(64, 32))
            lbl.parent.mkdir(parents=True, exist_ok=True)
            lbl.write_text("0 0.5 0.5 0.2 0.2\n")
    return root


@pytest.fixture
def rd_imagefolder(tmp_path: Path) -> Path:
    """ImageFolder with train/val/test splits, 3 unequal classes, JPEG and PNG."""
    return build_imagefolder(tmp_path / "ds", {
        "train": {"cat": 12, "dog": 6, "fox": 3},
        "val": {"cat": 20, "dog": 10, "fox": 2},
        "test": {"cat": 4, "dog": 4, "fox": 4},
    })


@pytest.fixture
def rd_flat(tmp_path: Path) -> Path:
    root = tmp_path / "flat"
    for i in range(10):
        write_image(root / f"img_{i:02d}.jpg", color=(i * 20, 0, 0))
    return root
