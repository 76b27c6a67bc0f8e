"""A small benchmark run (every variant from one conversion) shared by the engine and browser tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.pipeline import run_export

COLORS = {"blue": (20, 30, 230), "green": (25, 220, 40), "red": (235, 25, 30)}


class MeanColour(nn.Module):
    """Output i is the mean of input channel ``order[i]``: a classifier whose answers are known by construction."""

    def __init__(self, order: list[int]) -> None:
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1, bias=False)
        weight = torch.zeros(3, 3, 1, 1)
        for out, channel in enumerate(order):
            weight[out, channel] = 4.0
        self.mix.weight.data = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x).mean(dim=(2, 3))


def export_program(module: nn.Module, path: Path, size: int = 32) -> Path:
    torch.export.save(torch.export.export(module.eval(), (torch.zeros(1, 3, size, size),)), path)
    return path


def colour_folder(root: Path, counts: dict[str, list[str]], noise: int = 0, seed: int = 0) -> Path:
    """``counts[folder] = [colour of each image]``: lets a test plant mislabeled images."""
    rng = np.random.default_rng(seed)
    for folder, colours in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, colour in enumerate(colours):
            pixels = np.tile(np.array(COLORS[colour], dtype=np.int16), (40, 40, 1))
            if noise:
                pixels = pixels + rng.integers(-noise, noise + 1, pixels.shape)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / folder / f"{colour}_{i}.png")
    return root


@pytest.fixture(scope="session")
def benchmark_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    colours = list(COLORS)
    data = colour_folder(tmp / "data", {c: [c] * 8 + [colours[(i + 1) % 3]] for i, c in enumerate(colours)}, noise=60)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3),
    )
    ckpt = export_program(model, tmp / "conv.pt2")
    config = ExportConfig(
        model=ModelSpec(checkpoint=str(ckpt), input_shape=(1, 3, 32, 32)),
        data=DataSpec(dataset_dir=str(data), num_calib_samples=12, num_eval_samples=15, num_workers=0),
        variants=("none", "float16", "dynamic", "int8", "int16x8"),
        output_dir=str(tmp / "out"),
        latency_threads=(1, 2),
    )
    return config, run_export(config), model.eval()
