"""PyTorch module -> ONNX file (TorchScript-based exporter; the dynamo exporter needs onnxscript)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from conversions.engine.errors import ConversionError

DEFAULT_OPSET = 17


def output_names_for(module: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    with torch.no_grad():
        out = module(torch.zeros(input_shape))
    count = len(out) if isinstance(out, (tuple, list)) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def export_onnx(
    module: nn.Module, input_shape: tuple[int, ...], path: Path, opset: int = DEFAULT_OPSET
) -> Path:
    """Writes ``path`` with a fixed batch-1 input named ``input``; raises ``ConversionError`` with the op at fault."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(input_shape)
    names = output_names_for(module, input_shape)
    # The exporter prints tracer warnings for every data-dependent branch; they are noise for users.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                (dummy,),
                str(path),
                opset_version=opset,
                input_names=["input"],
                output_names=names,
                dynamo=False,
                do_constant_folding=True,
                # An eval-mode module is exported as it is: a torch.export program's module raises on .train().
                training=torch.onnx.TrainingMode.EVAL if module.training else torch.onnx.TrainingMode.PRESERVE,
            )
        except Exception as err:
            raise ConversionError(
                f"PyTorch -> ONNX export failed at opset {opset}: {str(err).strip().splitlines()[0][:300]}. "
                "The model's forward must be traceable with a fixed input shape: replace data-dependent Python "
                "control flow and unsupported ops, or export a torch.export program (.pt2)."
            ) from None
    return path
