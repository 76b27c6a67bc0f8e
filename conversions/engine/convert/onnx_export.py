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
GELU_OPSET = 20
"""At opset 20 torch writes ``nn.GELU`` as one ``Gelu`` node, which onnx2tf turns into ``tf.nn.gelu`` and TF's
converter into the builtin GELU op (an int8 lookup table). Below 20 it is an ``Erf`` chain that onnx2tf fuses
only in a shape a real export never has, leaving ``tf.Erf``, which TFLite has no kernel for."""


def output_names_for(module: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    with torch.no_grad():
        out = module(torch.zeros(input_shape))
    count = len(out) if isinstance(out, (tuple, list)) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def export_onnx(
    module: nn.Module, input_shape: tuple[int, ...], path: Path, opset: int | None = None
) -> Path:
    """Writes ``path`` with a fixed batch-1 input named ``input``; raises ``ConversionError`` with the op at fault.

    Without ``opset``: opset 17, or opset 20 when the graph computes GELU through ``Erf`` (see ``GELU_OPSET``);
    the file's own ``opset_import`` says which."""
    if opset is not None:
        return _export(module, input_shape, Path(path), opset)
    if any(isinstance(m, nn.GELU) for m in module.modules()):
        return _export(module, input_shape, Path(path), GELU_OPSET)
    path = _export(module, input_shape, Path(path), DEFAULT_OPSET)
    if "Erf" in _op_types(path):  # F.gelu, or a GELU module of its own: only the exported graph tells
        path = _export(module, input_shape, path, GELU_OPSET)
    return path


def _op_types(path: Path) -> set[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {node.op_type for node in graph.node}


def exported_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _export(module: nn.Module, input_shape: tuple[int, ...], path: Path, opset: int) -> Path:
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
