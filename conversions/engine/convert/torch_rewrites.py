"""Exact PyTorch-level rewrites before ONNX export, so the int8 file runs on XNNPACK's int8 kernels.

XNNPACK (the TFLite CPU delegate) has no int8 kernel for PRELU or HARD_SWISH: an int8 model with either falls
back to slow reference kernels and can end up slower than float32. Each rewrite here computes the same
function from ops XNNPACK does delegate in int8 (LEAKY_RELU, RELU, ADD/SUB/MUL, RELU6 fused into ADD):

- ``nn.PReLU`` with one slope (or all slopes equal) -> ``nn.LeakyReLU(slope)``: bit-exact.
- ``nn.PReLU`` with per-channel slopes -> ``relu(x) + a * (x - relu(x))``: bit-exact (``x - relu(x)`` is
  ``min(x, 0)``), and not the Keras ``relu(x) - a * relu(-x)`` form that TFLite fuses back into PRELU.
- ``nn.LayerNorm`` (timm's and torchvision's channels-first ``LayerNorm2d`` too) -> its two means as a
  FULLY_CONNECTED / 1x1 CONV_2D with constant weights 1/C, and ``(x - mean)**2`` as a MUL. onnx2tf lowers
  LayerNorm to MEAN and SQUARED_DIFFERENCE, which XNNPACK does not take in int8 here: on a 6-LayerNorm test
  block int8 ran 5.2x float32's time, rewritten 1.9x (``benchmarks/bench_speed.py``-style timing, 1 thread).
  The weights 1/C quantize exactly (per-channel scale (1/C)/127); equal to the original up to float rounding.
- ``nn.Hardswish`` (and timm's ``HardSwish``/``HardSwishMe``) -> ``(x * 1/6) * relu6(x + 3)``. The converter
  re-fuses ``x * relu6(x + 3) * 1/6`` into HARD_SWISH (MatchHardSwishPattern in TFLite's
  optimize_patterns.td); scaling ``x`` first is a product those patterns do not match. Equal to the original
  up to float rounding (a few ulp).

Only a run that builds int8 is rewritten: every variant comes from one graph, and the decomposed forms can cost
the float files time against XNNPACK's fused float PRELU / HARD_SWISH (one MobileNetV3-like measurement had
float32 2.4 -> 6.6 ms; runs through the engine showed no consistent change on a loaded machine). The caller's
module is never changed: a copy is rewritten, when there is anything to.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# timm's own hard-swish modules, by class name so timm need not be imported to recognise them.
_TIMM_HARD_SWISH = {("timm.layers.activations", "HardSwish"), ("timm.layers.activations_me", "HardSwishMe")}
# LayerNorms whose forward is F.layer_norm over the last dim, or over channels of an NCHW tensor (permuted).
_LAST_DIM_NORMS = {("torch.nn.modules.normalization", "LayerNorm"), ("timm.layers.norm", "LayerNorm")}
_CHANNEL_NORMS = {("timm.layers.norm", "LayerNorm2d"), ("torchvision.models.convnext", "LayerNorm2d")}


REWRITE_NOTE = "rewritten before export so int8 stays on XNNPACK"
"""How every rewrite's note in the run's warnings begins."""


class ChannelPReLU(nn.Module):
    """PReLU with per-channel slopes, from ops XNNPACK runs in int8: ``relu(x) + a * min(x, 0)``."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # PReLU's slopes apply along dim 1 (channels) whatever the rank; shape them to broadcast there.
        a = self.weight.view(1, -1, *([1] * (x.dim() - 2))) if x.dim() >= 2 else self.weight
        positive = F.relu(x)
        return positive + a * (x - positive)


class MeanAsMatmulLayerNorm(nn.Module):
    """LayerNorm over one dim whose two means are products with a constant 1/C vector (see the module doc)."""

    def __init__(self, norm: nn.LayerNorm, channels_first: bool) -> None:
        super().__init__()
        (c,) = norm.normalized_shape
        self.eps, self.channels_first = norm.eps, channels_first
        self.register_buffer("average", torch.full((1, c), 1.0 / c))
        self.register_buffer("weight", None if norm.weight is None else norm.weight.detach().clone())
        self.register_buffer("bias", None if norm.bias is None else norm.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_first:  # NCHW: the mean over C is a 1x1 convolution
            average = self.average.view(1, -1, 1, 1)
            mean = F.conv2d(x, average)
            d = x - mean
            y = d * torch.rsqrt(F.conv2d(d * d, average) + self.eps)
            shape = (1, -1, 1, 1)
        else:
            mean = F.linear(x, self.average)
            d = x - mean
            y = d * torch.rsqrt(F.linear(d * d, self.average) + self.eps)
            shape = (-1,)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y


class ScaledHardSwish(nn.Module):
    """``x * relu6(x + 3) / 6`` in an order TFLite's converter does not fuse back into HARD_SWISH."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1.0 / 6.0)) * F.relu6(x + 3.0)


class Rewritten(NamedTuple):
    module: nn.Module
    notes: list[str]
    """One sentence per kind of rewrite applied, e.g. "PReLU -> LeakyReLU (exact): 3 modules"."""


def _is_hard_swish(m: nn.Module) -> bool:
    # Exact types only: a subclass may override forward, and then it is no longer the function rewritten here.
    return type(m) is nn.Hardswish or (type(m).__module__, type(m).__name__) in _TIMM_HARD_SWISH


def _replacement(m: nn.Module) -> tuple[nn.Module, str] | None:
    if type(m) is nn.PReLU:
        w = m.weight.detach()
        if bool((w == w.reshape(-1)[0]).all()):
            return nn.LeakyReLU(float(w.reshape(-1)[0])), "PReLU -> LeakyReLU (one slope, exact)"
        return ChannelPReLU(w), "PReLU -> relu(x) + a*min(x, 0) (per-channel slopes, exact)"
    if _is_hard_swish(m):
        return ScaledHardSwish(), "hard-swish -> (x/6)*relu6(x+3) (equal to float rounding)"
    kind = (type(m).__module__, type(m).__name__)
    if (kind in _LAST_DIM_NORMS or kind in _CHANNEL_NORMS) and len(m.normalized_shape) == 1:
        what = "LayerNorm -> means as FULLY_CONNECTED/1x1 CONV with weights 1/C (equal to float rounding)"
        return MeanAsMatmulLayerNorm(m, channels_first=kind in _CHANNEL_NORMS), what
    return None


def rewrite_for_int8(module: nn.Module, variants: Iterable[str] = ("int8",)) -> Rewritten:
    """A copy of ``module`` with every rewritable activation replaced, and what was done; or ``module`` itself
    when ``variants`` has no int8 or there is nothing to rewrite."""
    if "int8" not in variants or not any(_replacement(m) for m in module.modules()):
        return Rewritten(module, [])
    done: Counter[str] = Counter()
    root = _replacement(module)
    if root is not None:  # the model is itself one activation (a test, a probe)
        done[root[1]] += 1
        return Rewritten(root[0], _notes(done))
    out = copy.deepcopy(module)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            found = _replacement(child)
            if found is not None:
                setattr(parent, name, found[0])
                done[found[1]] += 1
    return Rewritten(out, _notes(done))


def _notes(done: Counter[str]) -> list[str]:
    return [f"{REWRITE_NOTE}: {what}: {n} module{'s' * (n > 1)}" for what, n in done.items()]
