"""Activation ranges for int8: ``minmax``, ``percentile`` or ``mse``, chosen on the calibration stream.

The TFLite converter records each activation tensor's global min/max over the calibration samples and
quantizes with those. One outlier value (a bright pixel, a rare spike) then stretches the int8 grid of a
whole tensor. Here the converter only *calibrates* (``_experimental_calibrate_only``: a float model that
carries recorded min/max) on one sample; the min/max over every sample and, for ``percentile`` and ``mse``,
a histogram of every calibrated tensor come from our own pass over the stream on both cores (``statistics``:
exactly the calibrator's global min/max); we pick the range by the chosen method, write it into the
flatbuffer and quantize with ``mlir_quantize`` -- the quantizer the converter itself calls next. The same calibrated model is re-quantized with ops kept in float
by the accuracy guard, so the costly calibration pass runs once per run.

Methods:
- ``minmax``: the converter's own ranges (the result equals the plain converter's int8 model).
- ``percentile``: clip each side at the ``PERCENTILE``-th percentile of the values seen (0 stays inside).
- ``mse``: the clipping range that minimises the expected squared error of int8 rounding plus clipping,
  estimated from the histogram.
The graph input keeps its min/max: its range is set by preprocessing, not learned.

A padded (or ``ceil_mode``) max-pool arrives as a PADV2 whose pad value is -3.4e38, a stand-in for minus
infinity. Calibration records it as that tensor's minimum, which gives the pool an int8 scale near 1e36: the
per-layer interpreter then aborts and XNNPACK refuses the graph. Such a PAD's output takes its input's range
instead (``sentinel_pads``); the quantized pad value then clamps to the range's minimum, which a max-pool
never picks over a real value, so the int8 pool computes what the float one does.

The int8 variant's ``calibration`` (``CalibrationResult.summary()``, a ``CalibrationSummary``) says which
ranges were narrowed and by how much.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from conversions.engine.config import CALIBRATION_METHODS as METHODS
from conversions.engine.config import DEFAULT_CALIBRATION as DEFAULT_METHOD
from conversions.engine.convert.tflite_variant import RepresentativeDataGen
from conversions.engine.errors import ConfigError, ConversionError
from conversions.engine.int8.statistics import HISTOGRAM_BINS, CalibrationShards  # noqa: F401 (bins: part of this API)
from conversions.engine.progress import NullProgress, Progress
from conversions.engine.report.int8_results import CalibrationSummary, NarrowedRange
from conversions.engine.verify.native import NativeCrash

log = logging.getLogger("quantweb.engine")

PERCENTILE = 99.99
INT8_LEVELS = 255
MAX_LISTED = 20

Stream = RepresentativeDataGen


@dataclass
class CalibrationResult:
    """The calibrated float model, per-tensor ranges by method, and what the chosen method changed."""

    calibrated: bytes
    """Float model carrying the converter's recorded min/max (``minmax``)."""
    method: str
    model: bytes
    """``calibrated`` with the chosen method's ranges written in; feed it to ``quantize``."""
    minmax: dict[int, tuple[float, float]]
    ranges: dict[int, tuple[float, float]]
    names: dict[int, str]
    samples: int
    seconds: float
    histograms: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def summary(self) -> CalibrationSummary:
        """What the chosen method changed against min/max, for the report."""
        narrowed = [
            (i, self.minmax[i], self.ranges[i])
            for i in self.ranges
            if not np.allclose(self.ranges[i], self.minmax[i], rtol=1e-6, atol=1e-9)
        ]
        ratios = [(r[1] - r[0]) / max(m[1] - m[0], 1e-12) for _, m, r in narrowed]
        narrowed.sort(key=lambda x: (x[2][1] - x[2][0]) / max(x[1][1] - x[1][0], 1e-12))
        return CalibrationSummary(
            method=self.method,
            default_method=DEFAULT_METHOD,
            percentile=PERCENTILE if self.method == "percentile" else None,
            tensors=len(self.minmax),
            tensors_narrowed=len(narrowed),
            median_range_ratio=round(float(np.median(ratios)), 4) if ratios else 1.0,
            samples=self.samples,
            seconds=round(self.seconds, 2),
            narrowed=tuple(
                NarrowedRange(self.names[i], _pair(m), _pair(r)) for i, m, r in narrowed[:MAX_LISTED]
            ),
        )


def calibrate(
    float_model: bytes,
    stream: Stream,
    method: str = DEFAULT_METHOD,
    progress: Progress | None = None,
    expected_samples: int | None = None,
) -> CalibrationResult:
    """Calibrates ``float_model`` (the run's float32 ``.tflite``) once and returns ranges for ``method``
    (histograms are collected unless it is ``minmax``).

    The ranges go straight into the float32 file the route already built, on the tensors TFLite's calibrator
    would record (``calibration_tensors``). The converter's calibrate-only pass would convert the same graph a
    second time (12.9 of ResNet-50's 29 s int8 stage) and run the calibrator in a child (5 s more), for a file
    from which the quantizer makes a byte-identical int8 model (checked on ResNet-18, MobileViT, a tiny ViT;
    tests/engine/int8/test_ranges.py)."""
    if method not in METHODS:
        raise ConfigError(f"{{calibration_method}} {method!r} is not one of {', '.join(METHODS)}")

    progress = progress or NullProgress()
    started = time.perf_counter()
    count = [0]

    def counted() -> Iterable[list[np.ndarray]]:
        for sample in stream():
            count[0] += 1
            if expected_samples:
                share = min(count[0] / expected_samples, 1.0) / 2  # reading; the statistics are the other half
                progress.update(share, f"{count[0]}/{expected_samples} calibration samples read")
            yield [np.asarray(a, dtype=np.float32) for a in sample]

    # The ranges over every sample come from our own pass, sharded over both cores (``statistics``).
    samples = [sample[0] for sample in counted()]
    if not samples:
        raise ConversionError("the calibration data stream yielded no samples; check {dataset_dir}.")
    try:
        tensors, names, graph_inputs = calibration_tensors(float_model)
        with CalibrationShards(float_model, np.stack(samples)) as shards:
            progress.update(0.5, f"min/max of {len(tensors)} tensors over {len(samples)} samples")
            minmax = shards.minmax(tensors)
            calibrated = with_ranges(float_model, minmax)
            pads = sentinel_pads(calibrated)
            fixed = {out: minmax[src] for out, src in fixed_pads(pads, minmax)}
            if fixed:
                minmax.update(fixed)
                calibrated = with_ranges(calibrated, fixed)
                log.info("%d padded max-pool ranges taken from their inputs (pad value -3.4e38 left out)", len(fixed))
            result = CalibrationResult(calibrated, method, calibrated, minmax, dict(minmax), names, len(samples), 0.0)
            if method != "minmax":
                progress.update(0.75, f"histograms of {len(minmax)} tensors")
                result.histograms = shards.histograms({i: r for i, r in minmax.items() if r[1] > r[0]})
                result.ranges = choose_ranges(minmax, result.histograms, method, skip=graph_inputs)
                for out, src in fixed_pads(pads, minmax):  # a pad's values are its input's, plus the sentinel
                    result.ranges[out] = result.ranges[src]
                result.model = with_ranges(calibrated, result.ranges)
    except NativeCrash as err:
        raise ConversionError(
            f"int8 calibration failed: {err}. The float32 model is unaffected; try {{calibration_method}} minmax, "
            "or report the model with this message."
        ) from None
    except ConversionError:
        raise
    except Exception as err:
        raise ConversionError(f"calibration failed: {str(err).strip().splitlines()[0][:300]}") from None
    result.seconds = time.perf_counter() - started
    return result


def calibration_tensors(float_model: bytes) -> tuple[list[int], dict[int, str], set[int]]:
    """(tensors TFLite's calibrator records, tensor index -> name, graph input indices) of subgraph 0.

    The calibrator logs every float32 tensor an op produces, and the graph's inputs (its weights are
    constants: the quantizer reads their ranges from the data)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_model))
    graph = model.subgraphs[0]
    graph_inputs = {int(i) for i in graph.inputs}
    produced = {int(i) for op in graph.operators for i in op.outputs if i >= 0} | graph_inputs
    float32 = 0  # TensorType.FLOAT32
    tensors = sorted(i for i in produced if graph.tensors[i].type == float32)
    names = {i: _name(graph.tensors[i]) for i in tensors}
    return tensors, names, graph_inputs


def _name(tensor: Any) -> str:
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def read_ranges(calibrated: bytes) -> tuple[dict[int, tuple[float, float]], dict[int, str], set[int]]:
    """(tensor index -> recorded (min, max), tensor index -> name, graph input indices) of subgraph 0."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    graph = model.subgraphs[0]
    ranges: dict[int, tuple[float, float]] = {}
    names: dict[int, str] = {}
    for i, tensor in enumerate(graph.tensors):
        q = tensor.quantization
        if q is not None and q.min is not None and len(q.min) == 1 and q.max is not None and len(q.max) == 1:
            ranges[i] = (float(q.min[0]), float(q.max[0]))
            names[i] = _name(tensor)
    return ranges, names, {int(i) for i in graph.inputs}


SENTINEL_PAD = -1e30
"""A PADV2 constant at or below this is onnx2tf's minus infinity for a max-pool's padding, not data."""


def sentinel_pads(model_bytes: bytes) -> dict[int, int]:
    """Output tensor -> input tensor of every PADV2 that pads with a minus-infinity stand-in (subgraph 0)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    graph = model.subgraphs[0]
    padv2 = 60  # BuiltinOperator.PADV2
    out: dict[int, int] = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) != padv2 or len(op.inputs) < 3:
            continue
        value = graph.tensors[op.inputs[2]]
        data = model.buffers[value.buffer].data if value.buffer < len(model.buffers) else None
        if data is None or len(data) < 4:
            continue
        pad = np.frombuffer(bytes(bytearray(data)), dtype=np.float32)
        if pad.size and float(pad.min()) <= SENTINEL_PAD:
            out[int(op.outputs[0])] = int(op.inputs[0])
    return out


def fixed_pads(pads: dict[int, int], ranges: dict[int, tuple[float, float]]) -> list[tuple[int, int]]:
    return [(out, src) for out, src in pads.items() if out in ranges and src in ranges]


def choose_ranges(
    minmax: dict[int, tuple[float, float]],
    histograms: dict[int, np.ndarray],
    method: str,
    skip: set[int] | None = None,
    percentile: float = PERCENTILE,
) -> dict[int, tuple[float, float]]:
    """Range per tensor by ``method``; tensors without a histogram or in ``skip`` keep min/max."""
    out = dict(minmax)
    for i, hist in histograms.items():
        if skip and i in skip or hist.sum() == 0:
            continue
        lo, hi = minmax[i]
        if method == "percentile":
            out[i] = _percentile_range(hist, lo, hi, percentile)
        elif method == "mse":
            out[i] = _mse_range(hist, lo, hi)
    return out


def _centers(hist: np.ndarray, lo: float, hi: float) -> np.ndarray:
    width = (hi - lo) / len(hist)
    return lo + width * (np.arange(len(hist)) + 0.5)


def _percentile_range(hist: np.ndarray, lo: float, hi: float, percentile: float) -> tuple[float, float]:
    tail = (100.0 - percentile) / 100.0
    cdf = np.cumsum(hist) / hist.sum()
    edges = np.linspace(lo, hi, len(hist) + 1)
    new_lo, new_hi = lo, hi
    if lo < 0:  # first bin whose cumulative share reaches the tail
        new_lo = min(float(edges[int(np.searchsorted(cdf, tail, side="left"))]), 0.0)
    if hi > 0:
        new_hi = max(float(edges[int(np.searchsorted(cdf, 1.0 - tail, side="left")) + 1]), 0.0)
    return new_lo, new_hi


def _mse_range(hist: np.ndarray, lo: float, hi: float, steps: int = 64) -> tuple[float, float]:
    """Minimises sum(n * err^2): in-range values cost step^2/12 (uniform rounding), clipped ones their distance."""
    c = _centers(hist, lo, hi)
    n = hist.astype(np.float64)
    # Prefix sums give every candidate's clipping error in O(1).
    s0, s1, s2 = np.cumsum(n), np.cumsum(n * c), np.cumsum(n * c * c)
    total0, total1, total2 = s0[-1], s1[-1], s2[-1]

    def error(a: float, b: float) -> float:
        ia = int(np.searchsorted(c, a, side="left"))  # bins [0, ia) lie below a
        ib = int(np.searchsorted(c, b, side="right"))  # bins [ib, end) lie above b
        below0, below1, below2 = (s0[ia - 1], s1[ia - 1], s2[ia - 1]) if ia > 0 else (0.0, 0.0, 0.0)
        above0 = total0 - (s0[ib - 1] if ib > 0 else 0.0)
        above1 = total1 - (s1[ib - 1] if ib > 0 else 0.0)
        above2 = total2 - (s2[ib - 1] if ib > 0 else 0.0)
        inside = total0 - below0 - above0
        step = (b - a) / INT8_LEVELS
        clip_low = below2 - 2 * a * below1 + a * a * below0
        clip_high = above2 - 2 * b * above1 + b * b * above0
        return inside * step * step / 12.0 + clip_low + clip_high

    fractions = np.linspace(1.0 / steps, 1.0, steps)
    lows = [lo * f for f in fractions] if lo < 0 else [lo]
    highs = [hi * f for f in fractions] if hi > 0 else [hi]
    best = (error(lo, hi), lo, hi)
    for a in lows:
        for b in highs:
            e = error(a, b)
            if e < best[0]:
                best = (e, a, b)
    return float(best[1]), float(best[2])


def with_ranges(calibrated: bytes, ranges: dict[int, tuple[float, float]]) -> bytes:
    """The model (float32 or calibrated) with tensor min/max set to ``ranges`` (tensor index -> (min, max))."""
    from tensorflow.lite.tools import flatbuffer_utils

    from tensorflow.lite.python import schema_py_generated as schema

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    for i, (lo, hi) in ranges.items():
        if tensors[i].quantization is None:  # a float32 file fresh from the converter has no fields yet
            tensors[i].quantization = schema.QuantizationParametersT()
        q = tensors[i].quantization
        q.min = np.array([lo], dtype=np.float32)
        q.max = np.array([hi], dtype=np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def quantize(calibrated: bytes, io_type: str = "float32", keep_float: Iterable[str] = ()) -> bytes:
    """int8 model from a calibrated one; ops whose output tensor is named in ``keep_float`` compute in float.

    This is the call the TFLiteConverter makes after calibrating (same quantizer, per-channel weights), with
    ``denylisted_nodes`` -- the mechanism TensorFlow's QuantizationDebugger uses for selective quantization.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert

    dtype = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[io_type]
    nodes = sorted(set(keep_float))
    try:
        with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": the converter's own noise
            warnings.simplefilter("ignore", UserWarning)
            return bytes(
                convert.mlir_quantize(
                    calibrated, input_data_type=dtype, output_data_type=dtype, denylisted_nodes=nodes or None
                )
            )
    except Exception as err:
        raise ConversionError(f"int8 quantization failed: {str(err).strip().splitlines()[0][:300]}") from None


def _pair(r: tuple[float, float]) -> tuple[float, float]:
    return (float(np.format_float_positional(r[0], 5)), float(np.format_float_positional(r[1], 5)))
