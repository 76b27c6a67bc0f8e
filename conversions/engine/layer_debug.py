"""Per-layer error of a quantized ``.tflite`` model against its float twin, with PyTorch module names.

Both models run in the interpreter with every intermediate tensor kept (no XNNPACK delegate, which would
hide them); every op output that exists in both models by name is compared on the same calibration-like
samples. The float side is the float32 model of the same graph (or the calibrated model, which is that
float model with recorded ranges), so names match one to one.

Names: onnx2tf 1.29 calls its TF ops ``tf.nn.convolution_6`` etc., so the ONNX node names (which carry the
PyTorch module path, ``/_blocks.2/_depthwise_conv/Conv``) are not in the ``.tflite``. They are recovered by
value: ONNX Runtime runs the route's ONNX graph with every intermediate exposed, and each TFLite tensor is
matched to the ONNX value with the same size and the same order-free moments (min, max, mean, RMS, ...: so
NCHW/NHWC does not matter). A fused
conv+bias+ReLU matches the ONNX ReLU output; its module is the nearest scoped producer (``spiky``).

``extra["layer_errors"]`` on the run (``layer_errors(...)``)::

    {"samples": 16, "source": "calibration images", "module_names": "matched by value to the ONNX graph",
     "float_ops": 0, "ops": [                      # in execution order (the network's depth)
        {"depth": 0, "op": "CONV_2D", "name": "<output tensor name: the converter's node name>",
         "label": "_conv_stem", "module": "_conv_stem", "onnx_node": "/_conv_stem/Conv",
         "sqnr_db": 38.2, "rel_rmse": 0.0123, "input_sqnr_db": 44.0, "added_noise_db": 5.8,
         "float_min": 0.0, "float_max": 6.0, "dtype": "int8", "scale": 0.0235, "zero_point": -128,
         "params": 864, "param_share": 0.0002, "macs": 10838016, "mac_share": 0.027, "in_float": false}, ...],
     "damage_order": [12, 3, ...]}               # indices into "ops", worst output SQNR first

``added_noise_db`` is how much worse the op's output is than the worst of its inputs: where error enters.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

log = logging.getLogger("quantweb.engine")

BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL")
_FLOAT = (np.float32, np.float16, np.float64)


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
    if np.dtype(d["dtype"]) in _FLOAT:
        value = x.astype(d["dtype"])
    else:
        scale, zero = d["quantization"]
        info = np.iinfo(d["dtype"])
        value = np.clip(np.round(x / scale + zero), info.min, info.max).astype(d["dtype"])
    interp.set_tensor(d["index"], value)


def dequantized(interp: Any, detail: dict[str, Any]) -> np.ndarray:
    x = interp.get_tensor(detail["index"])
    if np.dtype(detail["dtype"]) in _FLOAT:
        return x.astype(np.float64)
    params = detail["quantization_parameters"]
    scales, zeros = params["scales"], params["zero_points"]
    if len(scales) > 1:  # per-channel (weights only; activations are per tensor)
        axis = params["quantized_dimension"]
        shape = [1] * x.ndim
        shape[axis] = -1
        return (x.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)
    scale, zero = detail["quantization"]
    return (x.astype(np.float64) - zero) * scale


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


def layer_errors(
    float_model: bytes,
    quant_model: bytes,
    samples: np.ndarray,
    onnx_path: Path | None = None,
    input_layout: str = "NHWC",
    source: str = "calibration images",
) -> dict[str, Any]:
    """Compares every op output the two models share by name on ``samples`` (batch-1 rows, model layout)."""
    fl, qm, f_tensors, q_tensors, ops, ref_name = pair_models(float_model, quant_model)

    signal: dict[int, float] = defaultdict(float)
    noise: dict[int, float] = defaultdict(float)
    lo: dict[int, float] = defaultdict(lambda: math.inf)
    hi: dict[int, float] = defaultdict(lambda: -math.inf)
    for x in samples:
        x = x[None] if x.ndim == len(fl.get_input_details()[0]["shape"]) - 1 else x
        feed(fl, x)
        fl.invoke()
        feed(qm, x)
        qm.invoke()
        for qi, name in ref_name.items():
            ref = fl.get_tensor(f_tensors[name]["index"]).astype(np.float64)
            out = dequantized(qm, q_tensors[qi])
            if out.shape != ref.shape:
                continue
            signal[qi] += float((ref * ref).sum())
            noise[qi] += float(((ref - out) ** 2).sum())
            lo[qi] = min(lo[qi], float(ref.min()))
            hi[qi] = max(hi[qi], float(ref.max()))

    def sqnr(i: int) -> float | None:
        if i not in signal:
            return None
        return 200.0 if noise[i] <= 0 else float(np.clip(10 * np.log10(max(signal[i], 1e-30) / noise[i]), -100, 200))

    names = module_names(float_model, onnx_path, samples[:1], input_layout) if onnx_path else {}
    compute = [op for op in ops if op.op not in BOUNDARY_OPS and op.output in signal]
    total_params = sum(op.params for op in compute) or 1
    total_macs = sum(op.macs for op in compute) or 1
    rows = []
    for op in compute:
        t = q_tensors[op.output]
        scale, zero = t["quantization"]
        out_sqnr = sqnr(op.output)
        in_sqnrs = [s for s in (sqnr(i) for i in op.inputs) if s is not None]
        in_sqnr = min(in_sqnrs) if in_sqnrs else None
        mapped = names.get(ref_name.get(op.output, op.name), {})
        rows.append(
            {
                "depth": len(rows),
                "op": op.op,
                "name": ref_name.get(op.output, op.name),
                "label": mapped.get("module") or short_label(op.name),
                "module": mapped.get("module"),
                "onnx_node": mapped.get("onnx_node"),
                "sqnr_db": _r(out_sqnr, 2),
                "rel_rmse": _r(math.sqrt(noise[op.output] / signal[op.output]) if signal[op.output] > 0 else 0.0, 5),
                "input_sqnr_db": _r(in_sqnr, 2),
                "added_noise_db": _r(in_sqnr - out_sqnr, 2) if in_sqnr is not None and out_sqnr is not None else None,
                "float_min": _r(lo[op.output], 5),
                "float_max": _r(hi[op.output], 5),
                "dtype": np.dtype(t["dtype"]).name,
                "scale": float(scale) if scale else None,
                "zero_point": int(zero) if scale else None,
                "params": op.params,
                "param_share": round(op.params / total_params, 5),
                "macs": op.macs,
                "mac_share": round(op.macs / total_macs, 5),
                "in_float": np.dtype(t["dtype"]) in _FLOAT,
            }
        )
    consumers = {i: op for op in reversed(compute) for i in op.inputs}
    for row, op in zip(rows, compute):  # onnx2tf's explicit PAD has no ONNX twin: name it after its consumer
        nxt = consumers.get(op.output)
        if row["module"] is None and op.op == "PAD" and nxt is not None:
            module = next((r["module"] for r, o in zip(rows, compute) if o is nxt and r["module"]), None)
            row["label"] = f"{module} (pad)" if module else row["label"]
    order = sorted(range(len(rows)), key=lambda k: rows[k]["sqnr_db"] if rows[k]["sqnr_db"] is not None else 999)
    return {
        "samples": int(len(samples)),
        "source": source,
        "module_names": "matched by value to the ONNX graph" if names else "not available",
        "float_ops": sum(r["in_float"] for r in rows),
        "ops": rows,
        "damage_order": order,
    }


def short_label(name: str) -> str:
    """``model_2/tf.nn.relu6_6/Relu6;model_2/tf.math.add_10/Add;model_2/tf.nn.convolution_6/convolution``
    -> ``tf.nn.convolution_6`` (the computing layer of a fused op)."""
    parts = [p.split("/")[1] if p.count("/") >= 2 else p for p in name.split(";")]
    for key in ("convolution", "depthwise", "conv", "matmul", "dense"):
        for p in parts:
            if key in p.lower():
                return p
    return parts[-1] if parts else name


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


def summary_lines(report: dict[str, Any], limit: int = 8) -> list[str]:
    """The worst ops by output SQNR, one line each, for the terminal and the run log."""
    rows = report.get("ops", [])
    lines = [f"per-layer error on {report.get('samples', 0)} {report.get('source', 'samples')} (worst first):"]
    for k in report.get("damage_order", [])[:limit]:
        r = rows[k]
        lines.append(
            f"  #{r['depth']:<3} {r['op']:<18} {r['label'][:48]:<48} SQNR {r['sqnr_db']:>6} dB"
            f"  added {r['added_noise_db'] if r['added_noise_db'] is not None else '-':>5} dB"
            f"  range [{r['float_min']:.3g}, {r['float_max']:.3g}]  scale {r['scale'] or 0:.3g}"
        )
    return lines


def _r(x: float | None, digits: int) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)
