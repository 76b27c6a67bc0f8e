"""A small grayscale CNN trained in seconds on real labeled images: scikit-learn's handwritten digits.

The digits (1,797 8x8 scans, 0..16 grey levels, from the UCI set that ships inside scikit-learn's wheel) are
written as 16x16 PNGs; the CNN is trained on the very pixels the engine's ``inception`` preprocessing makes of
them ((p / 255 - 0.5) / 0.5), so the labeled accuracy of its int8 file is measured on its own input domain.
``load_digits`` reads them from scikit-learn in this interpreter or, where the project's venv lacks it, from
another interpreter that has it (``python``): nothing is downloaded.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

SIZE = 16


class DigitsCNN(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.BatchNorm2d(48), nn.ReLU(),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def build(num_classes: int = 10) -> DigitsCNN:
    return DigitsCNN(num_classes)


_DUMP = (
    "import io, sys, numpy as np\nfrom sklearn.datasets import load_digits\nd = load_digits()\n"
    "b = io.BytesIO(); np.savez(b, images=d.images, target=d.target); sys.stdout.buffer.write(b.getvalue())"
)


def load_digits(python: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 16, 16], labels [N]); raises ``RuntimeError`` saying why when no sklearn is found."""
    try:
        from sklearn.datasets import load_digits as sk_load

        d = sk_load()
        images, target = d.images, d.target
    except ImportError:
        if not python:
            raise RuntimeError("scikit-learn is not installed here and no other interpreter was given") from None
        done = subprocess.run([python, "-c", _DUMP], capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{python} could not load scikit-learn's digits: {done.stderr.decode()[-300:]}")
        arrays = np.load(io.BytesIO(done.stdout))
        images, target = arrays["images"], arrays["target"]
    pixels = np.clip(np.asarray(images) * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return pixels.repeat(2, axis=1).repeat(2, axis=2), np.asarray(target, dtype=np.int64)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """What the engine's ``inception`` preset does to a 1-channel image: (p / 255 - 0.5) / 0.5, NCHW."""
    return ((pixels.astype(np.float32) / 255.0 - 0.5) / 0.5)[:, None]


def train(pixels: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 12) -> DigitsCNN:
    torch.manual_seed(seed)
    model = DigitsCNN()
    x, y = torch.from_numpy(normalise(pixels)), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // 64)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def write_image_folder(pixels: np.ndarray, labels: np.ndarray, root: Path) -> Path:
    """An ImageFolder tree (one folder per digit) of 16x16 grayscale PNGs."""
    from PIL import Image

    for i, (img, label) in enumerate(zip(pixels, labels)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(folder / f"{i:05d}.png")
    return root
