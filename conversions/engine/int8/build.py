"""The int8 model a run ships, and the record of how it was made.

1. Ranges: one calibration pass, then the ranges of ``--calibration`` (``ranges``); every int8 model of the
   run (plain, with fallback) is quantized from that pass. With ``minmax`` the file computes exactly what the
   converter's own int8 file computes (same quantizer, same ranges).
2. Optional bias correction (``bias_correction``).
3. Per-layer error (``layer_error``) on calibration images, never the evaluation images.
4. With a budget, the accuracy guard (``guard``).
5. Without one, a check that the int8 file is usable at all: under ``UNUSABLE_TOP1`` % top-1 agreement (the
   whole 95 % interval of it, so a handful of held-out images cannot raise a false alarm) or
   ``UNUSABLE_SQNR_DB`` dB SQNR against the float model on the held-out images, the guard runs anyway with
   ``AUTO_MAX_DROP`` points and the run's warnings say so (an unusable file never ships as a plain success).
   An output without classes (boxes, masks) is judged on SQNR alone and only warned about: no top-1 to guard.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from conversions.engine.int8.bias_correction import correct_biases
from conversions.engine.int8.guard import Guard
from conversions.engine.int8.layer_error import layer_errors, summary_lines
from conversions.engine.int8.ranges import Stream, calibrate, quantize
from conversions.engine.progress import NullProgress, Progress, timed
from conversions.engine.report.int8_results import (
    BiasCorrection,
    CalibrationSummary,
    GuardResult,
    LayerErrors,
)
from conversions.engine.report.results import VariantReport
from conversions.engine.verify.native import NativeCrash, run_isolated

RANKING_SAMPLES = 32
LAYER_SAMPLES = 16
"""Per-layer error runs both models without XNNPACK, keeping every tensor: 16 images keep it to seconds."""
OVER_BUDGET_SUFFIX = "_over_budget"
UNUSABLE_TOP1 = 50.0
UNUSABLE_SQNR_DB = 10.0
AUTO_MAX_DROP = 3.0
"""Points of the guard's metric the automatic guard allows: moderate, since nobody asked for a budget."""


@dataclass(frozen=True)
class Int8Build:
    model: bytes
    calibration_method: str
    calibration: CalibrationSummary
    layer_errors: LayerErrors | None = None
    bias_correction: BiasCorrection | None = None
    guard: GuardResult | None = None
    warnings: list[str] = field(default_factory=list)
    pending: LayerTable | None = field(default=None, compare=False, repr=False)
    """The per-layer table still being computed; ``settled`` waits for it."""

    def settled(self, progress: Progress | None = None) -> "Int8Build":
        """This build with its per-layer table in (and the note if it could not be computed)."""
        if self.pending is None:
            return self
        layers, notes = self.pending.result(progress or NullProgress())
        return dataclasses.replace(self, layer_errors=layers, pending=None, warnings=[*self.warnings, *notes])

    @property
    def budget_met(self) -> bool | None:
        """None when no budget was asked (``--max-drop`` not given) or it cannot be measured."""
        return self.guard.budget_met if self.guard else None

    def output_path(self, path: Path) -> Path:
        """A model that misses its budget is never written under the name the user asked for."""
        if self.budget_met is False:
            return path.with_name(path.stem + OVER_BUDGET_SUFFIX + path.suffix)
        return path

    def rename_outputs(self, outputs: dict[str, Path]) -> dict[str, Path]:
        return {v: (self.output_path(p) if v == "int8" else p) for v, p in outputs.items()}

    def annotate(self, report: VariantReport) -> VariantReport:
        """The int8 variant's report with how it was made."""
        return dataclasses.replace(
            report,
            calibration_method=self.calibration_method,
            calibration=self.calibration,
            bias_correction=self.bias_correction,
            layer_errors=self.layer_errors,
            guard=self.guard,
        )


def without_int8(config: Any) -> Any:
    """The config for the pipeline's other variants: int8 is built here, from one calibration pass."""
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
    on_quantized: Callable[[bytes], None] | None = None,
) -> Int8Build:
    """The int8 model to ship and how it was made (see the module docstring).

    ``built["float32"]`` must hold the float32 model of the same graph. ``on_quantized`` is handed the
    int8 model as soon as it exists, before the per-layer table and the guard (the run starts its TFLite
    Micro check there). Adds ``convert_int8`` (calibration,
    ranges, quantization) and ``accuracy_guard`` (per-layer error, budget, fallback) to ``timings``.
    """
    progress = progress or NullProgress()
    timings = timings if timings is not None else {}
    method = config.calibration_method

    with timed(timings, "convert_int8"):
        progress.stage("convert int8 (calibrating" + (f", {method} ranges)" if method != "minmax" else ")"))
        calibration = calibrate(built["float32"], stream, method, progress, expected_samples)
        model = quantize(calibration.model, config.io_type)
    summary = calibration.summary()
    bias = None
    if config.bias_correction:
        with timed(timings, "bias_correction"):
            progress.stage("int8: bias correction")
            model, bias = correct_biases(calibration.calibrated, model, first_samples(stream, RANKING_SAMPLES))
        progress.log(f"bias correction: {bias.ops} ops, output SQNR {bias.sqnr_before} -> {bias.sqnr_after} dB")
    if method != "minmax":
        progress.log(f"{method} activation ranges: {summary.tensors_narrowed} of {summary.tensors} ranges narrowed")
    if on_quantized is not None:  # the file as it ships unless the guard below changes it
        on_quantized(model)

    with timed(timings, "accuracy_guard"):
        started = time.perf_counter()
        ranking = first_samples(stream, RANKING_SAMPLES)
        # The per-layer table runs in a child while the usable check runs here; unless the guard needs it,
        # the run collects it after verification (``Int8Build.settled``), so it costs no wall time of its own.
        pending = LayerTable(config, calibration.calibrated, model, ranking[:LAYER_SAMPLES], graph)
        result = Int8Build(model, method, summary, None, bias, pending=pending)
        notes: list[str] = []
        if config.max_drop is None:
            progress.stage("int8: usable check (per-layer error beside it)")
            auto = dataclasses.replace(config, max_drop=AUTO_MAX_DROP)
            guard = Guard(auto, graph, built["float32"], stream, evaluation, ranking, progress, expected_samples)
            check = guard.budget.measure(model)
            if not guard.budget.usable:  # no top-1 to guard: the output SQNR alone says whether it is usable
                if check.sqnr_db >= UNUSABLE_SQNR_DB:
                    return result
                note = unusable_output_note(check, guard.budget)
                progress.log(note)
                return dataclasses.replace(result, warnings=[note])
            if not is_unusable(check, len(guard.budget.inputs)):
                return result
            notes.append(unusable_note(check, guard.budget))
            progress.log(notes[0])
        else:
            guard = Guard(config, graph, built["float32"], stream, evaluation, ranking, progress, expected_samples)
        progress.stage("int8: per-layer error (the accuracy guard ranks by it)")
        result = result.settled(progress)
        layers = result.layer_errors
        if layers is None:  # the table's interpreter crashed: its note says the guard was skipped too
            return result
        if method != "minmax":  # the run says what the chosen ranges bought over the converter's own
            plain = guard.budget.measure(quantize(calibration.calibrated, config.io_type))
            summary = dataclasses.replace(summary, minmax_on_evaluation=plain)
        run = guard.run(model, calibration, layers, started)
    warnings = run.warnings
    if notes:  # the automatic guard: always said, met or not
        outcome = (f"the guarded file ships: {run.result.message}" if run.result.budget_met
                   else "it could not meet it, so the file is written as *_over_budget.tflite")  # fmt: skip
        warnings = [f"{notes[0]} {outcome}", *[w for w in warnings if w != f"int8: {run.result.message}"]]
    return dataclasses.replace(result, model=run.model, calibration=summary, guard=run.result,
                               warnings=[*result.warnings, *warnings])  # fmt: skip


class LayerTable:
    """The per-layer error table, computed in a spawned child on a worker thread: the interpreter that keeps
    every tensor can abort on a graph it dislikes, and the child takes the hit."""

    def __init__(self, config: Any, calibrated: bytes, model: bytes, samples: np.ndarray, graph: Any) -> None:
        self.config = config
        self._pool = ThreadPoolExecutor(max_workers=1)
        # The calibrated model is the float graph under the very node names the quantizer matches denylists by.
        self._future = self._pool.submit(
            run_isolated, "the per-layer error step", layer_errors, calibrated, model, samples, graph.onnx_path,
            graph.input_layout,
        )  # fmt: skip
        self._pool.shutdown(wait=False)

    def result(self, progress: Progress) -> tuple[LayerErrors | None, list[str]]:
        """(the table, or None with the note of why not)."""
        try:
            layers = self._future.result()
        except NativeCrash as err:
            note = (
                f"per-layer error table skipped: {err}; the int8 model itself is unaffected and verified below"
                + ("; the accuracy guard needs that table and was skipped too" if self.config.max_drop is not None
                   else "")
            )  # fmt: skip
            progress.log(note)
            return None, [note]
        for line in summary_lines(layers, limit=len(layers.ops) if self.config.debug else 8):
            progress.log(line)
        return layers, []


def is_unusable(check: Any, images: int) -> bool:
    """Output SQNR under ``UNUSABLE_SQNR_DB``, or top-1 agreement under ``UNUSABLE_TOP1`` % with its whole 95 %
    interval: on 16 held-out images of a random-init network (flat logits) 6 of 16 is anything from 18 to
    61 %, and running the guard on that would keep ops in float for nothing."""
    return check.sqnr_db < UNUSABLE_SQNR_DB or 100 * agreement_interval(check, images)[1] < UNUSABLE_TOP1


def agreement_interval(check: Any, images: int) -> tuple[float, float]:
    """The 95 % interval (fractions) of ``check``'s top-1 agreement on ``images`` held-out images."""
    from conversions.engine.verify.metrics import wilson_interval

    return wilson_interval(round(check.top1_agreement * images / 100), images) or (0.0, 1.0)


def unusable_note(check: Any, budget: Any) -> str:
    """What the automatic guard says about the plain int8 file it found unusable, with the budget's interval."""
    n = len(budget.inputs)
    lo, hi = agreement_interval(check, n)
    return (
        f"int8: UNUSABLE without help: plain int8 agrees with the float model on {check.top1_agreement:.1f} % of "
        f"{n} held-out images (95 % interval {100 * lo:.1f}-{100 * hi:.1f} %), output SQNR {check.sqnr_db:.1f} dB "
        f"(usable needs an interval reaching {UNUSABLE_TOP1:g} % and >= {UNUSABLE_SQNR_DB:g} dB). No accuracy budget "
        f"was asked for, "
        f"so the accuracy guard ran with a budget of {AUTO_MAX_DROP:g} points of {budget.metric} ({budget.samples} images);"
    )


def unusable_output_note(check: Any, budget: Any) -> str:
    """What a run says when an output without classes (boxes, masks, features) comes out of int8 unusable."""
    return (
        f"int8: UNUSABLE: the int8 output's SQNR against the float model is {check.sqnr_db:.1f} dB on "
        f"{len(budget.inputs)} held-out images (usable needs >= {UNUSABLE_SQNR_DB:g} dB). The output is not a "
        f"classifier's, so no top-1 budget can be guarded automatically: compare the int8 and float32 files on "
        f"your task before shipping, or try {{calibration_method}} percentile or more calibration images."
    )


def first_samples(stream: Stream, count: int) -> np.ndarray:
    """The first ``count`` calibration samples, stacked (each one in the model's layout)."""
    out = []
    for sample in stream():
        out.append(np.asarray(sample[0], dtype=np.float32).reshape(np.shape(sample[0])[1:]))
        if len(out) >= count:
            break
    return np.stack(out)
