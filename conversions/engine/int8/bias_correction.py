"""Empirical bias correction of an int8 model: fold the mean error of each weighted op into its int32 bias.

Rounding weights to int8 shifts the *mean* of a layer's output when the rounding errors of a channel do not
cancel (the test model's ``mix`` conv has weights of 1/100 the others', most of which round to zero: much
of what the outlier channels contribute, large and always positive after ReLU, is lost). For each int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
op, the per-output-channel mean of its dequantized output on calibration samples is compared with the float
model's same tensor (matched by ``tflite_graph.reference_names``), and the difference is added to the bias::

    bias_q[c] += round((mean_float[c] - mean_int8[c]) / (input_scale * weight_scale[c]))

``input_scale * weight_scale[c]`` is the bias tensor's own scale. Ops are corrected one at a time in depth
order, each measured with every earlier op already corrected: an early op's error shifts later ops' inputs,
and correcting all ops at once from one pass counts it twice (once where it enters, again downstream) and
overshoots (BENCHMARKS.md, Accuracy guard, Bias correction). One sweep costs one run of the int8 model per
sample per op (~30 s for EfficientNet-Lite0's 50 ops on 32 samples); a second sweep gains little. Only int32
bias values change: the file stays fully integer and keeps its size (re-serialising moves it by
under 1 %, alignment padding).

The int8 variant's ``bias_correction`` (a ``BiasCorrection``) says how many ops were corrected and the
output SQNR against the float model on the same calibration samples before and after.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from conversions.engine.int8.tflite_graph import (
    debug_interpreter,
    dequantized,
    feed,
    pair_models,
)
from conversions.engine.report.int8_results import BiasCorrection

CORRECTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
PASSES = 1
_INT32 = np.iinfo(np.int32)


def correct_biases(
    float_model: bytes, quant_model: bytes, samples: np.ndarray, passes: int = PASSES
) -> tuple[bytes, BiasCorrection]:
    """(``quant_model`` with corrected int32 biases, what was done) from batch-1 ``samples`` in model layout.

    ``float_model`` is the float ``.tflite`` of the same graph under the same tensor names (the calibrated
    model). Ops without a bias, or whose output has no float twin, are left as they are. ``passes`` is the
    number of depth-order sweeps.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    started = time.perf_counter()
    fl, _, f_tensors, q_tensors, ops, ref = pair_models(float_model, quant_model)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(quant_model))
    biases = _bias_tensors(model)
    targets = {
        op.output: biases[op.output]
        for op in ops
        if op.op in CORRECTED_OPS and op.output in ref and op.output in biases
        and np.dtype(q_tensors[op.output]["dtype"]) == np.int8
    }
    float_means = _channel_means(fl, samples, {i: f_tensors[ref[i]]["index"] for i in targets}, float_side=True)
    before = _output_sqnr(float_model, quant_model, samples)
    current = quant_model
    tensors = model.subgraphs[0].tensors
    corrected: set[int] = set()
    for _ in range(passes):
        for out, bias_index in targets.items():  # depth order: each op sees its corrected predecessors
            q_mean = _channel_means(debug_interpreter(current), samples, {out: out}, float_side=False)[out]
            bias = tensors[bias_index]
            values = _buffer_values(model, bias)
            if not q_mean.shape == float_means[out].shape == values.shape:
                continue
            scale = np.asarray(bias.quantization.scale, dtype=np.float64)
            step = np.round((float_means[out] - q_mean) / scale).astype(np.int64)
            values = np.clip(values + step, _INT32.min, _INT32.max)
            model.buffers[bias.buffer].data = values.astype("<i4").view(np.uint8)
            current = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
            corrected.add(out)
    return current, BiasCorrection(
        ops=len(corrected),
        passes=passes,
        samples=int(len(samples)),
        seconds=round(time.perf_counter() - started, 2),
        sqnr_before=round(before, 2),
        sqnr_after=round(_output_sqnr(float_model, current, samples), 2),
    )


def _bias_tensors(model: Any) -> dict[int, int]:
    """Output tensor -> int32 bias tensor of subgraph 0's weighted ops (a bias shared by two ops is skipped)."""
    from tensorflow.lite.tools import flatbuffer_utils

    graph = model.subgraphs[0]
    found: dict[int, int] = {}
    for operator in graph.operators:
        name = flatbuffer_utils.opcode_to_name(model, operator.opcodeIndex)
        if name not in CORRECTED_OPS or len(operator.inputs) < 3 or operator.inputs[2] < 0:
            continue
        bias = graph.tensors[operator.inputs[2]]
        data = model.buffers[bias.buffer].data
        has_scale = bias.quantization is not None and bias.quantization.scale is not None
        if bias.type == 2 and has_scale and data is not None and len(data):  # an INT32 constant
            found[int(operator.outputs[0])] = int(operator.inputs[2])
    buffers = [graph.tensors[b].buffer for b in found.values()]
    return {o: b for o, b in found.items() if buffers.count(graph.tensors[b].buffer) == 1}


def _buffer_values(model: Any, tensor: Any) -> np.ndarray:
    return np.asarray(model.buffers[tensor.buffer].data, dtype=np.uint8).view("<i4").astype(np.int64)


def _channel_means(interp: Any, samples: np.ndarray, tensors: dict[int, int], float_side: bool) -> dict[int, np.ndarray]:
    """Key -> mean over samples and positions of each last-axis channel of tensor ``tensors[key]``."""
    details = {t["index"]: t for t in interp.get_tensor_details()}
    sums: dict[int, np.ndarray] = {}
    rank = len(interp.get_input_details()[0]["shape"])
    for x in samples:
        feed(interp, x[None] if x.ndim == rank - 1 else x)
        interp.invoke()
        for key, index in tensors.items():
            value = interp.get_tensor(index).astype(np.float64) if float_side else dequantized(interp, details[index])
            flat = value.reshape(-1, value.shape[-1])
            sums[key] = sums.get(key, 0.0) + flat.mean(axis=0)
    return {k: v / len(samples) for k, v in sums.items()}


def _output_sqnr(float_model: bytes, quant_model: bytes, samples: np.ndarray) -> float:
    from conversions.engine.tensors import sqnr_db
    from conversions.engine.verify.interpreter import TFLiteModel, predict_many

    return sqnr_db(predict_many(TFLiteModel(float_model), samples)[0], predict_many(TFLiteModel(quant_model), samples)[0])
