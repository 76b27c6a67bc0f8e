"""Small non-classifier networks users bring: several outputs, embeddings, a PReLU face-detector stage."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiHeadFC(nn.Module):
    """A conv trunk ending in fully-connected layers with two outputs (class logits, 4 box values)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(32 * 8 * 8, 128), nn.ReLU())
        self.classes = nn.Linear(128, num_classes)
        self.box = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.trunk(x))
        return self.classes(h), self.box(h)


class EmbeddingNet(nn.Module):
    """A face/re-id style embedder: conv trunk, 128-d L2-normalised embedding."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        layers, c = [], 3
        for cout in (32, 64, 96, 128):
            layers += [
                nn.Conv2d(c, cout, 3, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU6(),
            ]
            c = cout
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.proj = nn.Linear(c, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.trunk(x)), dim=1)


class PReLUFaceNet(nn.Module):
    """MTCNN-style output stage (ONet-like, 48x48): PReLU, ceil-mode max-pools, FC, three outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(64, 128, 2), nn.PReLU(128),
        )  # fmt: skip
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.PReLU(256)
        )
        self.cls = nn.Linear(256, 2)
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.fc(self.features(x))
        return self.cls(h).softmax(1), self.box(h), self.landmarks(h)
