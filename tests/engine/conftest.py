"""Shared real inputs for the engine tests: an ImageFolder of class-distinct JPEGs and a network trained on it.

Both are session-scoped: building them takes a few seconds, and every conversion test reads them.
"""

from __future__ import annotations

import functools
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from support.engine_models import small_convnet

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec

MODELS_FILE = Path(__file__).resolve().parent.parent / "support" / "engine_models.py"
SMALL_MODEL = f"{MODELS_FILE}:small_convnet"
SMALL_SHAPE = (1, 3, 32, 32)
IMAGE_SIDE = 36
"""The imagenet preset resizes a 32-pixel input's shorter side to 36 and center-crops 32: 36x36 files only crop."""
CLASSES = ("disc", "gradient", "square", "stripes")
IMAGES_PER_CLASS = 20
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def pytest_configure(config: pytest.Config) -> None:
    if not any(line.startswith("slow") for line in config.getini("markers")):
        config.addinivalue_line("markers", "slow: tests that take more than ~10 s")


@functools.cache
def export_models_flags() -> frozenset[str]:
    from conversions.management.commands.export_models import Command

    parser = Command().create_parser("manage.py", "export_models")
    return frozenset(flag for action in parser._actions for flag in action.option_strings)


def assert_flags_exist(message: str) -> None:
    """A message that says what to do may only name flags ``export_models`` has."""
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", message))
    assert named <= export_models_flags(), f"{sorted(named - export_models_flags())} named in: {message}"


def draw_class_image(label: str, rng: np.random.Generator, side: int = IMAGE_SIDE) -> Image.Image:
    """One image of a class whose look no other class shares: a red disc, a blue left-to-right gradient,
    a green square or yellow diagonal stripes, each jittered in place, size and brightness."""
    background = tuple(int(v) for v in rng.integers(0, 50, 3))
    img = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(img)
    cx, cy = (int(v) for v in rng.integers(side // 3, 2 * side // 3, 2))
    r = int(rng.integers(side // 5, side // 3))
    bright = int(rng.integers(180, 256))
    if label == "disc":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(bright, 30, 30))
    elif label == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=(30, bright, 30))
    elif label == "gradient":
        ramp = np.linspace(0, bright, side, dtype=np.float32)[None, :].repeat(side, 0)
        pixels = np.stack([ramp * 0.2, ramp * 0.4, ramp], axis=-1)
        img = Image.fromarray(pixels.astype(np.uint8))
    elif label == "stripes":
        period = int(rng.integers(6, 10))
        phase = int(rng.integers(0, period))
        yy, xx = np.mgrid[0:side, 0:side]
        on = ((xx + yy + phase) // (period // 2)) % 2 == 0
        pixels = np.where(on[..., None], np.array([bright, bright, 20]), np.array(background)).astype(np.uint8)
        img = Image.fromarray(pixels)
    else:
        raise ValueError(label)
    noise = rng.normal(0, 6, (side, side, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def build_shapes_dataset(root: Path, per_class: int = IMAGES_PER_CLASS, seed: int = 0) -> Path:
    """A bare ImageFolder ``root/<class>/<class>_NNN.jpg``."""
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_class_image(label, rng).save(root / label / f"{label}_{i:03d}.jpg", quality=92)
    return root


def imagenet_input(path: Path | str, side: int = SMALL_SHAPE[-1]) -> np.ndarray:
    """What the imagenet preset makes of one of our 36x36 files, written out independently: center crop,
    1/255, mean/std; returned NCHW with batch 1."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    top = (pixels.shape[0] - side) // 2
    left = (pixels.shape[1] - side) // 2
    crop = pixels[top : top + side, left : left + side] / 255.0
    return ((crop - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None].astype(np.float32)


@dataclass(frozen=True)
class TrainedModel:
    """A state dict of ``small_convnet`` trained on ``dataset_dir`` until it tells the classes apart."""

    checkpoint: Path
    model: str
    input_shape: tuple[int, ...]
    dataset_dir: Path

    def copy_to(self, folder: Path, name: str | None = None) -> Path:
        """The checkpoint in a folder of its own (outputs are written next to it)."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (name or self.checkpoint.name)
        shutil.copyfile(self.checkpoint, target)
        return target

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(str(self.checkpoint), self.model, input_shape=self.input_shape, trust_checkpoint=True)

    def config(self, dataset: bool = True, **kwargs) -> ExportConfig:
        """An ``ExportConfig`` for this model: 32 calibration and 32 held-out images unless ``dataset`` is off."""
        data = DataSpec(str(self.dataset_dir), num_calib_samples=32, num_eval_samples=32) if dataset else DataSpec()
        return ExportConfig(model=self.spec, data=data, **kwargs)

    def module(self) -> torch.nn.Module:
        net = small_convnet()
        net.load_state_dict(torch.load(self.checkpoint, weights_only=True))
        return net.eval()


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes")


@pytest.fixture(scope="session")
def trained_model(shapes_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """Trains for a few seconds so predictions are confident, not near-ties of an untrained network."""
    files = sorted(shapes_dataset.glob("*/*.jpg"))
    x = torch.from_numpy(np.concatenate([imagenet_input(f) for f in files]))
    y = torch.tensor([CLASSES.index(f.parent.name) for f in files])
    torch.manual_seed(0)
    net = small_convnet(num_classes=len(CLASSES))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(8):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9, f"the test network did not learn the shapes ({accuracy:.2f})"
    path = tmp_path_factory.mktemp("ckpt") / "shapes_net.pth"
    torch.save(net.state_dict(), path)
    return TrainedModel(path, SMALL_MODEL, SMALL_SHAPE, shapes_dataset)


@pytest.fixture(scope="session")
def lite0_report(tmp_path_factory):
    """The bundled EfficientNet-Lite0 as int8 with ``--max-drop 1``, calibrated on 100 of the bundled photos and
    verified on the other 188 (one conversion, about two minutes, shared by the tests that need the real model)."""
    from conversions.engine.pipeline import run_export

    photos = Path(__file__).resolve().parents[2] / "demo" / "photos" / "crops"
    out = tmp_path_factory.mktemp("lite0") / "lite0_int8.tflite"
    config = ExportConfig(
        model=ModelSpec(model="efficientnet-lite0"),
        data=DataSpec(dataset_dir=str(photos), num_calib_samples=100, num_eval_samples=188),
        variants=("int8",),
        output=str(out),
        max_drop=1.0,
    )
    return run_export(config)
