"""The int8 model a run ships: one calibration, chosen ranges, optional bias correction, per-layer error, the guard."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from conversions.engine.int8.bias_correction import correct_biases
from conversions.engine.int8.guard import Guard, GuardOutcome
from conversions.engine.int8.layer_error import layer_errors, summary_lines
from conversions.engine.int8.ranges import Stream, calibrate, quantize
from conversions.engine.progress import NullProgress, Progress, timed

RANKING_SAMPLES = 32


LAYER_SAMPLES = 16
"""Per-layer error runs both models without XNNPACK, keeping every tensor: 16 images keep it to seconds."""




def without_int8(config: Any) -> Any:
    """The config for the pipeline's other variants: int8 is built here, from one calibration pass."""
    import dataclasses

    return dataclasses.replace(config, variants=tuple(v for v in config.variants if v != "int8"))


def build_int8(
    config: Any,
    graph: Any,
    built: dict[str, bytes],
    stream: Stream,
    evaluation: Any,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
    expected_samples: int | None = None,
) -> GuardOutcome:
    """The int8 model to ship and ``extra`` for its report (see the module docstring).

    ``built["none"]`` must hold the float32 model of the same graph. Adds ``convert_int8`` (calibration,
    ranges, quantization) and ``accuracy_guard`` (per-layer error, budget, fallback) to ``timings``.
    """
    progress = progress or NullProgress()
    timings = timings if timings is not None else {}
    method = config.calibration_method
    float_model = built["none"]

    with timed(timings, "convert_int8"):
        progress.stage("convert int8 (calibrating" + (f", {method} ranges)" if method != "minmax" else ")"))
        calibration = calibrate(graph.concrete_function, stream, method, progress, expected_samples)
        model = quantize(calibration.model, config.io_type)
    extra: dict[str, Any] = {"calibration_method": method, "calibration": calibration.to_dict()}
    if config.bias_correction:  # weight rounding: fold each op's mean output error into its bias (#6)
        with timed(timings, "bias_correction"):
            progress.stage("int8: bias correction")
            samples = first_samples(stream, RANKING_SAMPLES)
            model, extra["bias_correction"] = correct_biases(calibration.calibrated, model, samples)
        progress.log("bias correction: {ops} ops, output SQNR {sqnr_before} -> {sqnr_after} dB".format(**extra["bias_correction"]))
    if method != "minmax":
        progress.log(
            f"{method} activation ranges: {extra['calibration']['tensors_narrowed']} of "
            f"{extra['calibration']['tensors']} ranges narrowed"
        )

    with timed(timings, "accuracy_guard"):
        started = time.perf_counter()
        progress.stage("int8: per-layer error")
        ranking = first_samples(stream, RANKING_SAMPLES)
        # The calibrated model is the float graph under the very node names the quantizer matches denylists by.
        layers = layer_errors(calibration.calibrated, model, ranking[:LAYER_SAMPLES], graph.onnx_path, graph.input_layout)
        extra["layer_errors"] = layers
        for line in summary_lines(layers, limit=len(layers["ops"]) if config.debug else 8):
            progress.log(line)
        if config.max_drop is None:
            return GuardOutcome(model, extra)
        guard = Guard(config, graph, float_model, stream, evaluation, ranking, progress, expected_samples)
        if method != "minmax":  # the run says what the chosen ranges bought over the converter's own
            extra["calibration"]["minmax_on_evaluation"] = guard.budget.measure(quantize(calibration.calibrated, config.io_type))
        outcome = guard.run(model, calibration, layers, started)
    outcome.extra = {**extra, **outcome.extra}
    return outcome


def first_samples(stream: Stream, count: int) -> np.ndarray:
    out = []
    for sample in stream():
        out.append(np.asarray(sample[0], dtype=np.float32).reshape(np.shape(sample[0])[1:]))
        if len(out) >= count:
            break
    return np.stack(out)
