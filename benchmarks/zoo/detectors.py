"""Small YOLO-style detectors in plain torch, written as users write them (no Ultralytics import).

- ``YoloV5Style``: anchor-based, objectness, grids and anchors built from the feature-map shapes in ``forward``;
  returns ``[B, N, 5 + nc]`` (xywh in pixels, objectness, class probabilities).
- ``YoloV8Style``: anchor-free with a DFL box branch (``reg_max`` bins); anchors and strides are built in
  ``forward`` from the feature shapes (the ``Expand`` of anchor grids that onnxsim chokes on); returns
  ``[B, 4 + nc, N]`` like Ultralytics (xywh in pixels, class probabilities), which the engine's detection path reads.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _cbs(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU()
    )


class _Backbone(nn.Module):
    """Strides 8, 16, 32 with 32/64/128 channels."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            _cbs(3, w, 3, 2), _cbs(w, 2 * w, 3, 2), _cbs(2 * w, 2 * w, 3, 1)
        )
        self.p3 = nn.Sequential(_cbs(2 * w, 2 * w, 3, 2), _cbs(2 * w, 2 * w))
        self.p4 = nn.Sequential(_cbs(2 * w, 4 * w, 3, 2), _cbs(4 * w, 4 * w))
        self.p5 = nn.Sequential(_cbs(4 * w, 8 * w, 3, 2), _cbs(8 * w, 8 * w))
        self.channels = (2 * w, 4 * w, 8 * w)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        return [p3, p4, self.p5(p4)]


class YoloV5Style(nn.Module):
    strides = (8, 16, 32)

    def __init__(self, num_classes: int = 4, width: int = 16) -> None:
        super().__init__()
        self.nc, self.na = num_classes, 3
        self.backbone = _Backbone(width)
        self.heads = nn.ModuleList(
            nn.Conv2d(c, self.na * (5 + num_classes), 1) for c in self.backbone.channels
        )
        anchors = torch.tensor(
            [
                [10, 13, 16, 30, 33, 23],
                [30, 61, 62, 45, 59, 119],
                [116, 90, 156, 198, 373, 326],
            ],
            dtype=torch.float32,
        )
        self.register_buffer("anchors", anchors.view(3, self.na, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for i, feat in enumerate(self.backbone(x)):
            p = self.heads[i](feat)
            b, _, h, w = p.shape
            p = p.view(b, self.na, 5 + self.nc, h, w).permute(0, 1, 3, 4, 2).sigmoid()
            yv, xv = torch.meshgrid(
                torch.arange(h, dtype=p.dtype),
                torch.arange(w, dtype=p.dtype),
                indexing="ij",
            )
            grid = torch.stack((xv, yv), 2).view(1, 1, h, w, 2)
            anchor = self.anchors[i].view(1, self.na, 1, 1, 2)
            xy = (p[..., 0:2] * 2 - 0.5 + grid) * self.strides[i]
            wh = (p[..., 2:4] * 2) ** 2 * anchor
            out.append(torch.cat((xy, wh, p[..., 4:]), -1).view(b, -1, 5 + self.nc))
        return torch.cat(out, 1)


def _make_anchors(
    feats: list[torch.Tensor], strides: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    points, stride_list = [], []
    for feat, stride in zip(feats, strides):
        _, _, h, w = feat.shape
        sx = torch.arange(w, dtype=feat.dtype) + 0.5
        sy = torch.arange(h, dtype=feat.dtype) + 0.5
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), stride, dtype=feat.dtype))
    return torch.cat(points).transpose(0, 1), torch.cat(stride_list).transpose(0, 1)


class YoloV8Style(nn.Module):
    strides = (8, 16, 32)

    def __init__(
        self, num_classes: int = 4, width: int = 16, reg_max: int = 16
    ) -> None:
        super().__init__()
        self.nc, self.reg_max = num_classes, reg_max
        self.backbone = _Backbone(width)
        c2 = max(16, 4 * reg_max // 4)
        self.box = nn.ModuleList(
            nn.Sequential(_cbs(c, c2), _cbs(c2, c2), nn.Conv2d(c2, 4 * reg_max, 1))
            for c in self.backbone.channels
        )
        self.cls = nn.ModuleList(
            nn.Sequential(_cbs(c, c2), _cbs(c2, c2), nn.Conv2d(c2, num_classes, 1))
            for c in self.backbone.channels
        )
        self.dfl = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        self.dfl.weight.data[:] = torch.arange(reg_max, dtype=torch.float32).view(
            1, reg_max, 1, 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        b = x.shape[0]
        xs = [
            torch.cat((self.box[i](f), self.cls[i](f)), 1) for i, f in enumerate(feats)
        ]
        anchors, strides = _make_anchors(xs, self.strides)
        flat = torch.cat([t.view(b, 4 * self.reg_max + self.nc, -1) for t in xs], 2)
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        n = box.shape[2]
        dist = self.dfl(
            box.view(b, 4, self.reg_max, n).transpose(2, 1).softmax(1)
        ).view(b, 4, n)
        lt, rb = dist.chunk(2, 1)
        anchors = anchors.unsqueeze(0)
        x1y1, x2y2 = anchors - lt, anchors + rb
        xywh = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((xywh, cls.sigmoid()), 1)


def yolov5_style(num_classes: int = 4) -> YoloV5Style:
    return YoloV5Style(num_classes)


def yolov8_style(num_classes: int = 4) -> YoloV8Style:
    return YoloV8Style(num_classes)
