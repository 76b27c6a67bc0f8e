"""A small CNN that plain int8 genuinely breaks, as real networks sometimes do.

The ``spiky`` convolution's output carries a few channels whose range is ~100x the rest; ``mix`` divides those
channels back down, so the float function is an ordinary CNN. With one int8 scale per activation tensor the
ordinary channels of ``spiky``'s output fall to a handful of levels and the classifier's decisions change.
Keeping ``spiky`` and ``mix`` in float (so that tensor never becomes int8) repairs it; nothing else does.
"""

from __future__ import annotations

import torch
import torch.nn as nn

SPIKE_CHANNELS = (0, 1, 2)
SPIKE_GAIN = 100.0
PLANTED_MODULES = ("spiky", "mix")
"""The PyTorch modules whose shared tensor int8 breaks: the producer of the spiky tensor and its consumer."""


class SpikyNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.body = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.spiky = nn.Conv2d(32, 32, 3, padding=1)
        self.mix = nn.Conv2d(32, 32, 1)
        self.head = nn.Conv2d(32, 48, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.body(x))
        x = torch.relu(self.spiky(x))
        x = torch.relu(self.mix(x))
        x = torch.relu(self.head(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def build(num_classes: int = 10) -> SpikyNet:
    """The architecture; weights come from ``make_weights`` (saved as a state dict by the tests)."""
    return SpikyNet(num_classes)


def make_weights(seed: int = 0, logit_gain: float = 6.0, spike_gain: float = SPIKE_GAIN) -> dict[str, torch.Tensor]:
    """Seeded weights with the planted outlier channels; the classifier is confident on most images.

    ``spike_gain`` 1e4 instead of 100 leaves the ordinary channels of ``spiky``'s output no int8 level at all:
    plain int8 is then unusable (most top-1 decisions change), not merely worse."""
    torch.manual_seed(seed)
    model = SpikyNet()
    with torch.no_grad():
        for conv in (model.stem, model.body, model.spiky, model.mix, model.head):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            conv.bias.uniform_(0.0, 0.1)
        for c in SPIKE_CHANNELS:
            model.spiky.weight[c] *= spike_gain
            model.spiky.bias[c] *= spike_gain
            model.mix.weight[:, c] /= spike_gain
        model.fc.weight.mul_(logit_gain)
    return model.state_dict()


class SpikyBoxes(SpikyNet):
    """The same network with a detector-shaped output: (N, 48, 16) per-cell "boxes", no classes.

    Flattened, that tensor is 2-D like a classifier's; its "top-1" would be the largest box coordinate."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.body(x))
        x = torch.relu(self.spiky(x))
        x = torch.relu(self.mix(x))
        return torch.flatten(self.head(x), 2)


def build_boxes(num_classes: int = 10) -> SpikyBoxes:
    return SpikyBoxes(num_classes)
