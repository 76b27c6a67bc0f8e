"""Small real networks for the engine tests: each converts in seconds on a laptop CPU.

``--model tests/support/engine_models.py:small_convnet`` reaches these through the file-path factory route.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SmallConvNet(nn.Module):
    """Four 3x3 convolutions (32-64 channels) and a linear head for 1x3x32x32 inputs.

    Big enough (~95k weights) that weights dominate the ``.tflite`` file, so int8 is well under half of float32.
    """

    def __init__(self, num_classes: int = 4, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(3, width, 1),
            _conv_bn_relu(width, 2 * width, 2),
            _conv_bn_relu(2 * width, 2 * width, 2),
            _conv_bn_relu(2 * width, 2 * width, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def small_convnet(num_classes: int = 4, width: int = 32) -> SmallConvNet:
    return SmallConvNet(num_classes=num_classes, width=width)


class LinearOnly(nn.Module):
    """A model that takes a flat 16-vector: an image-shaped input makes it fail."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def linear_only() -> LinearOnly:
    return LinearOnly()


class SamePadBlock(nn.Module):
    """EfficientNet-style block: TF 'same' padding as an explicit ``nn.ZeroPad2d`` before the convolution.

    Stride 2 pads asymmetrically, ``(0, 1, 0, 1)``; stride 1 with equal channels adds the input back.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1) if stride == 2 else (1, 1, 1, 1))
        self.conv = nn.Conv2d(cin, cout, 3, stride, 0)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn(self.conv(self.pad(x))))
        return x + y if self.residual else y


class SamePadNet(nn.Module):
    """Residual blocks with 'same' padding around stride-2 convolutions, for 1x3x64x64 inputs.

    The TorchScript ONNX exporter writes these pads as a ConstantOfShape/Concat/Slice chain that onnx2tf
    1.29 mis-converts on the direct route; the onnxsim route folds it into constants and converts.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            SamePadBlock(3, 16, 2),
            SamePadBlock(16, 16, 1),
            SamePadBlock(16, 24, 2),
            SamePadBlock(24, 24, 1),
            SamePadBlock(24, 32, 2),
            SamePadBlock(32, 32, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.blocks(x)), 1))


def same_pad_net(num_classes: int = 10) -> SamePadNet:
    return SamePadNet(num_classes=num_classes)


class TopKShift(SmallConvNet):
    """``small_convnet`` whose logits are shifted by their maximum through ``torch.topk``: the same top-1, and a
    TOPK_V2 op in the ``.tflite``, which TFLite Micro has no kernel for."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        return logits - torch.topk(logits, 2, dim=1).values[:, :1]


def topk_shift(num_classes: int = 4, width: int = 32) -> TopKShift:
    return TopKShift(num_classes=num_classes, width=width)


class ActivationNet(nn.Module):
    """Every activation the int8 rewrites replace, for 1x3x32x32 inputs: per-channel and single-slope PReLU
    (conv and linear), hard-swish, and a division by a constant."""

    def __init__(self, num_classes: int = 4, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.PReLU(width))
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.Hardswish(), nn.Conv2d(width, width, 3, 2, 1),
                                  nn.PReLU())
        self.fc = nn.Sequential(nn.Linear(width, 32), nn.PReLU(32), nn.Linear(32, num_classes))
        with torch.no_grad():  # distinct slopes, so the per-channel form is the one exercised
            for m in self.modules():
                if isinstance(m, nn.PReLU) and m.num_parameters > 1:
                    m.weight.copy_(torch.linspace(0.05, 0.6, m.num_parameters))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.stem(x))
        return self.fc(h.mean((2, 3)) / 6.0)


def activation_net(num_classes: int = 4) -> ActivationNet:
    return ActivationNet(num_classes=num_classes)
