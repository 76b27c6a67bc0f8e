"""Ultralytics checkpoints (``yolov8*.pt``, ``yolo11*.pt``, ``yolo26*.pt``) -> a plain detector module.

An Ultralytics ``.pt`` is a pickle of the whole model object, so loading it needs the ``ultralytics``
package (and with it torchvision): see ``requirements-ultralytics.txt`` and docs/detection.md. The file is
recognised without unpickling it, by the class names its pickle refers to, so a missing package is a clear
error rather than an unpickling failure. Like any pickle, it is only loaded with ``--trust-checkpoint``.

The loaded model is set up the way Ultralytics' own exporter does it for a raw-prediction format: fused,
float32, eval mode, the head in export mode (it returns one ``[B, 4 + nc, N]`` tensor) with the NMS-free
end2end branch off, because a quantized end2end top-k is not what the int8 checks below are about.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from conversions.engine.errors import CheckpointError

INSTALL_HINT = (
    "install the optional extra in this venv: `pip install -r requirements-ultralytics.txt` (it pulls ultralytics "
    "and torchvision; see docs/detection.md for the size and the torch pairing)"
)
DEFAULT_SIZE = 640
_MARKER = b"ultralytics"


def is_ultralytics_checkpoint(path: str | Path | None) -> bool:
    """True for a torch.save archive (or legacy pickle) whose pickle names ``ultralytics`` classes."""
    if not path:
        return False
    path = Path(path)
    if not path.is_file() or path.suffix == ".pt2":
        return False
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith("data.pkl"):
                        with archive.open(name) as fh:
                            return _MARKER in fh.read(4_000_000)
            return False
        with open(path, "rb") as fh:
            return _MARKER in fh.read(4_000_000)
    except (OSError, zipfile.BadZipFile):
        return False


def load_ultralytics(spec: Any) -> Any | None:
    """A ``LoadedModel`` for an Ultralytics checkpoint, or None when ``spec.checkpoint`` is not one."""
    if not is_ultralytics_checkpoint(spec.checkpoint):
        return None
    path = Path(spec.checkpoint)
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        raise CheckpointError(f"{path} is an Ultralytics checkpoint and the ultralytics package is not installed; {INSTALL_HINT}.") from None
    if not spec.trust_checkpoint:
        raise CheckpointError(
            f"{path} is an Ultralytics checkpoint, a pickle of the whole model, and unpickling runs code from the "
            "file; pass {trust_checkpoint} if you trust where it came from."
        )
    from conversions.engine.model.loading import LoadedModel

    model = _load(path)
    model = model.float().eval()
    if hasattr(model, "fuse"):
        model = model.fuse(verbose=False) if "verbose" in model.fuse.__code__.co_varnames else model.fuse()
    for module in model.modules():
        if hasattr(module, "export") and hasattr(module, "stride") and hasattr(module, "nc"):
            module.export = True
            module.format = "onnx"
            module.dynamic = False
            if hasattr(module, "end2end"):
                module.end2end = False
    size = _image_size(model)
    shape = tuple(spec.input_shape)
    if shape == (1, 3, 224, 224):  # the CLI default: take the size the model was trained at
        shape = (1, 3, size, size)
    names = getattr(model, "names", {})
    description = f"Ultralytics {type(model).__name__} from {path.name} ({len(names)} classes, trained at {size})"
    return LoadedModel(UltralyticsDetector(model, names).eval(), "ultralytics", shape, description, "yolo")


def _load(path: Path) -> Any:
    try:
        from ultralytics.nn.tasks import load_checkpoint  # 8.3.x and later
    except ImportError:
        load_checkpoint = None
    try:
        if load_checkpoint is not None:
            model, _ = load_checkpoint(str(path), device="cpu", fuse=False)
        else:
            from ultralytics.nn.tasks import attempt_load_one_weight

            model, _ = attempt_load_one_weight(str(path), device="cpu", fuse=False)
    except Exception as err:  # a wrong or damaged file fails in whatever way its pickle does
        raise CheckpointError(f"ultralytics could not load {path} ({type(err).__name__}: {str(err).splitlines()[0][:200]}).") from None
    return model


def _image_size(model: Any) -> int:
    args = getattr(model, "args", None) or {}
    size = args.get("imgsz") if isinstance(args, dict) else getattr(args, "imgsz", None)
    if isinstance(size, (list, tuple)):
        size = max(size)
    return int(size) if size else DEFAULT_SIZE


class UltralyticsDetector(nn.Module):
    """The Ultralytics model with a forward that returns only the prediction tensor, and its class names."""

    def __init__(self, model: nn.Module, names: Any) -> None:
        super().__init__()
        self.model = model
        self.names = dict(names) if isinstance(names, dict) else dict(enumerate(names or []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out[0] if isinstance(out, (tuple, list)) else out
