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


class TinyViT(nn.Module):
    """The smallest ViT that still has every transformer op the big ones have: a patch embedding, a class
    token and position embedding, one block of LayerNorm, multi-head self-attention (timm's 5-D qkv
    reshape/permute, softmax over tokens) and a GELU MLP, then a LayerNorm and a linear head."""

    def __init__(self, size: int = 64, patch: int = 8, dim: int = 48, heads: int = 4, num_classes: int = 10):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        tokens = (size // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = x + self.attention(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return self.head(self.norm(x)[:, 0])
