"""PyTorch module names for TFLite ops, recovered by matching tensor values with ONNX Runtime's."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from conversions.engine.int8.tflite_graph import (
    WEIGHTED_OPS,
    debug_interpreter,
    feed,
    graph_ops,
)

log = logging.getLogger("quantweb.engine")


def module_names(
    float_model: bytes, onnx_path: Path, sample: np.ndarray, input_layout: str = "NHWC"
) -> dict[str, dict[str, str]]:
    """TFLite op output name -> ``{"onnx_node", "module"}`` by matching values with ONNX Runtime's."""
    try:
        values, producer = _onnx_values(Path(onnx_path), sample, input_layout)
    except Exception as err:  # a naming aid only: the table stays correct without it, and says so
        log.warning("could not run the ONNX graph to recover PyTorch names: %s", err)
        return {}
    by_size: dict[int, list[tuple[str, np.ndarray]]] = defaultdict(list)
    for name, v in values.items():
        if v.dtype.kind == "f" and v.size > 1:
            by_size[v.size].append((name, _moments(v.ravel())))
    fl = debug_interpreter(float_model)
    feed(fl, sample)
    fl.invoke()
    out: dict[str, dict[str, str]] = {}
    for op in graph_ops(fl):
        got = fl.get_tensor(op.output).ravel()
        tol = 1e-3 * (float(np.abs(got).max()) + 1e-6)
        moments = _moments(got)
        # Order-free moments (so NCHW/NHWC does not matter); the first in graph order wins ties (Conv before Flatten).
        for name, m in by_size.get(got.size, []):
            if np.abs(m - moments).max() <= tol:
                node = _computing_node(producer[name], producer) if op.op in WEIGHTED_OPS else producer[name]
                out[op.name] = {"onnx_node": node.name, "module": _module_of(node, producer)}
                break
    return out


def _moments(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    return np.array(
        [x.min(), x.max(), x.mean(dtype=np.float64), np.sqrt(np.dot(x, x) / x.size), np.abs(x).mean(dtype=np.float64),
         np.cbrt(np.dot(x * x, x) / x.size)],
        dtype=np.float64,
    )


_ACTIVATIONS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Add", "Mul", "Identity"}


_COMPUTING = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def _computing_node(node: Any, producer: dict[str, Any], hops: int = 4) -> Any:
    """A fused conv+bias+activation matched the activation's output; name the conv that feeds it."""
    start = node
    for _ in range(hops):
        if node.op_type in _COMPUTING:
            return node
        if node.op_type not in _ACTIVATIONS:
            break
        feeding = [producer[i] for i in node.input if i in producer]
        if not feeding:
            break
        node = feeding[0]
    return start


def _onnx_values(onnx_path: Path, sample: np.ndarray, layout: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import onnx
    import onnxruntime as ort

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    producer = {o: node for node in model.graph.node for o in node.output}
    known = {o.name for o in model.graph.output}
    typed = {v.name: v for v in model.graph.value_info}
    for node in model.graph.node:
        for o in node.output:
            if o not in known and o in typed:
                model.graph.output.append(typed[o])
                known.add(o)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.transpose(sample, (0, 3, 1, 2)) if layout == "NHWC" and sample.ndim == 4 else sample
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})
    order = {o: k for k, node in enumerate(model.graph.node) for o in node.output}
    pairs = sorted((n, v) for n, v in zip(names, results) if n in producer)
    pairs.sort(key=lambda nv: order[nv[0]])
    return {n: np.asarray(v) for n, v in pairs}, producer


def _module_of(node: Any, producer: dict[str, Any], hops: int = 4) -> str | None:
    """``/_blocks.2/_depthwise_conv/Conv`` -> ``_blocks.2._depthwise_conv``; an unscoped node (a functional
    ``torch.relu`` exports as ``/Relu_2``) takes the module of the op that feeds it."""
    for _ in range(hops):
        parts = node.name.strip("/").split("/")
        if len(parts) >= 2:
            return ".".join(parts[:-1])
        feeding = [producer[i] for i in node.input if i in producer]
        if not feeding:
            return None
        node = feeding[0]
    return None
