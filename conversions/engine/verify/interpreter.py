"""Runs ``.tflite`` files in the TFLite interpreter and measures them against the PyTorch model.

- ``TFLiteModel``: feeds float inputs to any variant (quantizing for integer I/O from the tensor's own
  scale/zero point) and returns float outputs.
- ``fidelity``: top-1 / confident top-1 / top-5 agreement and SQNR against PyTorch outputs.
- ``measure_latencies``: median/p90 per model, interleaved round-robin so machine noise hits all alike.
- ``audit_ops``: is the model fully integer, and which ops compute in float if not.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.report.results import LatencyStats

_FLOAT_DTYPES = (np.float32, np.float16, np.float64)


def allocated_interpreter(content: bytes, threads: int = 1, xnnpack: bool = True, **options: Any) -> tuple[Any, bool]:
    """A LiteRT interpreter with its tensors allocated, and whether XNNPACK runs it.

    XNNPACK may refuse a node it cannot prepare (Swin-T's int8 file: "Node number 553 ... failed to
    prepare"); the builtin kernels compute the same function, only slower, so the model runs on them instead
    of failing. ``options`` go to the interpreter (e.g. ``experimental_preserve_all_tensors``)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def build(resolver: Any) -> Any:
        interp = Interpreter(model_content=content, num_threads=threads, experimental_op_resolver_type=resolver,
                             **options)  # fmt: skip
        interp.allocate_tensors()
        return interp

    if not xnnpack:
        return build(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES), False
    try:
        return build(OpResolverType.AUTO), True
    except RuntimeError as err:
        if "XNNPACK" not in str(err):
            raise
        return build(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES), False


class TFLiteModel:
    def __init__(self, model: bytes | str | Path, threads: int = 1, xnnpack: bool = True) -> None:
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        self._bytes = content
        # Without XNNPACK: the builtin kernels, for a model XNNPACK refuses (verify/native.py finds out).
        self.interpreter, self.xnnpack = allocated_interpreter(content, threads, xnnpack)
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["name"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input["shape"])

    def io_description(self) -> dict[str, Any]:
        def describe(d: dict[str, Any]) -> dict[str, Any]:
            scale, zero = d["quantization"]
            return {
                "name": d["name"],
                "shape": [int(x) for x in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name,
                "scale": float(scale),
                "zero_point": int(zero),
            }

        return {"input": describe(self.input), "outputs": [describe(d) for d in self.outputs]}

    def _set_input(self, x: np.ndarray) -> None:
        dtype = self.input["dtype"]
        if dtype in _FLOAT_DTYPES:
            value = x.astype(dtype)
        else:
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            value = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        self.interpreter.set_tensor(self.input["index"], value)

    def _get_output(self, d: dict[str, Any]) -> np.ndarray:
        out = self.interpreter.get_tensor(d["index"])
        if d["dtype"] in _FLOAT_DTYPES:
            return out.astype(np.float32)
        scale, zero = d["quantization"]
        return ((out.astype(np.float32) - zero) * scale).astype(np.float32)

    def invoke(self, x: np.ndarray) -> None:
        self._set_input(x)
        self.interpreter.invoke()

    def predict(self, x: np.ndarray) -> list[np.ndarray]:
        """One batch-1 input in the model's layout -> float outputs."""
        self.invoke(x)
        return [self._get_output(d) for d in self.outputs]


def predict_many(model: TFLiteModel, inputs: np.ndarray) -> list[np.ndarray]:
    per = [model.predict(inputs[i : i + 1]) for i in range(len(inputs))]
    return [np.concatenate([p[k] for p in per]) for k in range(len(per[0]))]


def measure_latencies(
    models: dict[str, bytes | Path],
    sample: np.ndarray,
    threads: int = 1,
    runs: int = 30,
    warmup: int = 3,
    without_xnnpack: frozenset[str] = frozenset(),
) -> dict[str, LatencyStats]:
    """Times every model on the same input, round-robin, so a noisy neighbour slows all of them alike.

    Models named in ``without_xnnpack`` run on the reference kernels (their stats say ``xnnpack=False``).
    """
    loaded = {name: TFLiteModel(m, threads=threads, xnnpack=name not in without_xnnpack) for name, m in models.items()}
    for model in loaded.values():
        for _ in range(warmup):
            model.invoke(sample)
    times: dict[str, list[float]] = {name: [] for name in loaded}
    for _ in range(runs):
        for name, model in loaded.items():
            model._set_input(sample)
            start = time.perf_counter()
            model.interpreter.invoke()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {
        name: LatencyStats(
            median=round(float(np.median(t)), 3),
            p90=round(float(np.percentile(t, 90)), 3),
            threads=threads,
            runs=runs,
            xnnpack=loaded[name].xnnpack,
        )
        for name, t in times.items()
    }


MAX_LISTED_FLOAT_OPS = 50


def audit_ops(model: bytes | Path) -> tuple[bool, list[str], dict[str, int]]:
    """(fully_integer, float ops listed as ``OP_NAME(output tensor)``, op counts).

    An op counts as float when it produces a float tensor. The QUANTIZE at a float input and the DEQUANTIZE
    at a float output are the I/O boundary of a float-I/O integer model, not float compute, so they are
    allowed; a DEQUANTIZE anywhere else (e.g. float16 or dynamic weights) is float compute.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    content = model if isinstance(model, bytes) else Path(model).read_bytes()
    # Without the default XNNPACK delegate, so the op list is the model's own, not one DELEGATE node.
    interp = Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    graph_inputs = {d["index"] for d in interp.get_input_details()}
    graph_outputs = {d["index"] for d in interp.get_output_details()}
    ops = interp._get_ops_details()
    counts = Counter(op["op_name"] for op in ops)
    float_ops: list[str] = []
    for op in ops:
        outs = [i for i in op["outputs"] if i >= 0]
        produces_float = any(np.dtype(tensors[i]["dtype"]) in _FLOAT_DTYPES for i in outs if i in tensors)
        if not produces_float and op["op_name"] != "QUANTIZE":
            continue
        if op["op_name"] == "QUANTIZE" and set(i for i in op["inputs"] if i >= 0) <= graph_inputs:
            continue
        if op["op_name"] == "DEQUANTIZE" and set(outs) <= graph_outputs:
            continue
        if op["op_name"] == "QUANTIZE" and not produces_float:
            # int8 <-> int16 requantize inside the graph is integer compute.
            if all(np.dtype(tensors[i]["dtype"]) not in _FLOAT_DTYPES for i in op["inputs"] if i in tensors):
                continue
        name = tensors[outs[0]]["name"] if outs and outs[0] in tensors else "?"
        float_ops.append(f"{op['op_name']}({name})")
    return (not float_ops, float_ops[:MAX_LISTED_FLOAT_OPS], dict(counts))


def model_input_dtype(model: bytes | Path) -> str:
    return np.dtype(TFLiteModel(model).input["dtype"]).name


