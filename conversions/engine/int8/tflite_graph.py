"""A .tflite graph opened for inspection: ops in execution order, every tensor readable, float/int8 twins paired."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL")


FLOAT_DTYPES = (np.float32, np.float16, np.float64)


def debug_interpreter(model: bytes) -> Any:
    """An interpreter that keeps every intermediate tensor readable after ``invoke``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    return interp


@dataclass
class Op:
    depth: int
    op: str
    output: int
    name: str
    inputs: list[int]
    params: int
    macs: int


def graph_ops(interp: Any) -> list[Op]:
    """The ops in execution order with output tensor, activation inputs, parameter count and MACs."""
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    details = interp._get_ops_details()
    produced = {o for d in details for o in d["outputs"] if o >= 0}
    graph_inputs = {d["index"] for d in interp.get_input_details()}
    ops = []
    for d in details:
        outs = [o for o in d["outputs"] if o >= 0]
        if not outs:
            continue
        ins = [i for i in d["inputs"] if i >= 0]
        consts = [i for i in ins if i not in produced and i not in graph_inputs]
        ops.append(
            Op(
                depth=len(ops),
                op=d["op_name"],
                output=outs[0],
                name=tensors[outs[0]]["name"],
                inputs=[i for i in ins if i in produced or i in graph_inputs],
                params=_params(d["op_name"], consts, tensors),
                macs=_macs(d["op_name"], [tensors[i] for i in ins], tensors[outs[0]]),
            )
        )
    return ops


def _params(op: str, consts: list[int], tensors: dict[int, Any]) -> int:
    count = 0
    for pos, i in enumerate(consts):
        dtype = np.dtype(tensors[i]["dtype"])
        # Index-like constants (paddings, axes, shapes) are not parameters; a weighted op's int32 bias is.
        if dtype.kind in "iu" and dtype.itemsize >= 4 and not (op in WEIGHTED_OPS and pos > 0):
            continue
        count += int(np.prod(tensors[i]["shape"])) if len(tensors[i]["shape"]) else 1
    return count


def _macs(op: str, inputs: list[dict[str, Any]], output: dict[str, Any]) -> int:
    out = [int(d) for d in output["shape"]]
    if len(inputs) < 2:
        return 0
    w = [int(d) for d in inputs[1]["shape"]]
    if op == "CONV_2D" and len(w) == 4:  # weights O,kh,kw,I
        return int(np.prod(out)) * w[1] * w[2] * w[3]
    if op == "DEPTHWISE_CONV_2D" and len(w) == 4:  # weights 1,kh,kw,C*m
        return int(np.prod(out)) * w[1] * w[2]
    if op == "FULLY_CONNECTED" and len(w) == 2:
        return int(np.prod(out)) * w[1]
    if op == "TRANSPOSE_CONV" and len(inputs) > 1:
        wt = [int(d) for d in inputs[1]["shape"]]
        return int(np.prod(out)) * (wt[1] * wt[2] * wt[3] if len(wt) == 4 else 1)
    return 0


def feed(interp: Any, x: np.ndarray) -> None:
    """Sets the (float) sample as the model input, quantizing it for an integer-input model."""
    d = interp.get_input_details()[0]
    if np.dtype(d["dtype"]) in FLOAT_DTYPES:
        value = x.astype(d["dtype"])
    else:
        scale, zero = d["quantization"]
        info = np.iinfo(d["dtype"])
        value = np.clip(np.round(x / scale + zero), info.min, info.max).astype(d["dtype"])
    interp.set_tensor(d["index"], value)


def dequantized(interp: Any, detail: dict[str, Any], dtype: Any = np.float64) -> np.ndarray:
    """The tensor's values in ``dtype`` (a new array), its int8 levels times their scales."""
    x = interp.get_tensor(detail["index"])
    if np.dtype(detail["dtype"]) in FLOAT_DTYPES:
        return x.astype(dtype)
    params = detail["quantization_parameters"]
    scales, zeros = params["scales"], params["zero_points"]
    if len(scales) > 1:  # per-channel (weights only; activations are per tensor)
        axis = params["quantized_dimension"]
        shape = [1] * x.ndim
        shape[axis] = -1
        return (x.astype(dtype) - zeros.reshape(shape).astype(dtype)) * scales.reshape(shape).astype(dtype)
    scale, zero = detail["quantization"]
    return (x.astype(dtype) - dtype(zero)) * dtype(scale)


class ModelPair(NamedTuple):
    """The float and int8 models of one graph opened side by side, every tensor readable after ``invoke``."""

    float_interp: Any
    quant_interp: Any
    f_tensors: dict[str, Any]
    """Float-model tensor details by name."""
    q_tensors: dict[int, Any]
    """int8-model tensor details by index."""
    ops: list[Op]
    """The int8 model's ops in execution order."""
    reference: dict[int, str]
    """int8 tensor index -> name of its float twin (``reference_names``)."""


def pair_models(float_model: bytes, quant_model: bytes) -> ModelPair:
    """Opens both models and matches the int8 tensors to their float twins; per-layer error and bias
    correction both start here."""
    fl = debug_interpreter(float_model)
    qm = debug_interpreter(quant_model)
    f_tensors = {t["name"]: t for t in fl.get_tensor_details()}
    q_tensors = {t["index"]: t for t in qm.get_tensor_details()}
    ops = graph_ops(qm)
    return ModelPair(fl, qm, f_tensors, q_tensors, ops, reference_names(ops, q_tensors, f_tensors))


def reference_names(ops: list[Op], q_tensors: dict[int, Any], f_tensors: dict[str, Any]) -> dict[int, str]:
    """Quantized-model tensor index -> name of the float-model tensor it stands for.

    The float tensor of the same name; a QUANTIZE/DEQUANTIZE output stands for the float tensor it converts
    (e.g. the graph input), and an int8 graph output (renamed) for the float name its DEQUANTIZE carries.
    """
    ref_name: dict[int, str] = {}
    for op in ops:
        if op.name in f_tensors:
            ref_name[op.output] = op.name
        elif op.op in BOUNDARY_OPS and op.inputs:
            src = op.inputs[0]
            ref_name[op.output] = ref_name.get(src, q_tensors[src]["name"])
    for op in ops:  # an int8 graph output is renamed; its DEQUANTIZE carries the float name
        if op.op == "DEQUANTIZE" and op.inputs and op.name in f_tensors and op.inputs[0] not in ref_name:
            ref_name[op.inputs[0]] = op.name
    ref_name = {k: v for k, v in ref_name.items() if v in f_tensors}
    for i in {i for op in ops for i in op.inputs}:
        if q_tensors[i]["name"] in f_tensors:
            ref_name.setdefault(i, q_tensors[i]["name"])
    return ref_name
