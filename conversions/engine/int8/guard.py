"""The accuracy guard (``--max-drop D``): keep the ops that hurt the output most in float until int8 holds.

The drop is measured on the held-out evaluation images (points of top-1 agreement with the float model on
the images it classifies with p >= 0.5, or of labeled top-1 accuracy when the images have labels). If it
exceeds D, ops are ranked by their effect on the *model output*, end to end: a unit is one activation tensor
with its producer and consumers (the only way that tensor stays float), a unit is kept in float and the
output SQNR against the float model on calibration images is measured; many units are screened at once
(contiguous depth segments, split best-first), so ranking costs ~24 conversions, not one per op. Then the
top 1, 2, 4, ... units are kept in float, re-measuring the budget after each step, until it holds or
``--max-fallback`` (fraction of ops in float) would be exceeded. Last resort: int16 activations for the
whole model (int16x8), shipped only if it meets the budget (it runs on reference kernels, many times slower;
the run's warnings give the slowdown). If nothing meets the budget, the best int8 attempt is shipped under
``<name>_over_budget.tflite`` and the CLI exits non-zero; the ``GuardResult`` says what it achieved.

Which ops are kept is decided on calibration images only; the evaluation images decide only whether the
budget holds (the stopping rule), which is the figure the run reports. The reference is the float32
``.tflite`` of the same graph (it matches PyTorch to >100 dB on the bundled model; the run's fidelity
columns are still measured against PyTorch itself).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Iterable

import numpy as np

from conversions.engine.convert.tflite_variant import RepresentativeDataGen
from conversions.engine.int8.budget import Budget, predict_flat
from conversions.engine.int8.ranges import CalibrationResult, quantize
from conversions.engine.int8.tflite_graph import (
    BOUNDARY_OPS,
    debug_interpreter,
    graph_ops,
)
from conversions.engine.progress import Progress
from conversions.engine.report.int8_results import (
    GuardCost,
    GuardMeasure,
    GuardResult,
    GuardStep,
    KeptFloat,
    LayerErrors,
    RankedUnit,
)
from conversions.engine.tensors import sqnr_db, to_tf_layout

log = logging.getLogger("quantweb.engine")

MAX_RANKING_EVALUATIONS = 24
SEGMENTS = 8
MIN_GAIN_DB = 0.05
SLOW_GUARD_RATIO = 2.0
"""A guarded file slower than this many times plain int8 is named in the run's warnings with its latency."""

Stream = RepresentativeDataGen


@dataclass(frozen=True)
class GuardRun:
    """What the guard settled on: the model to ship, the record of how, and what the user should know."""

    model: bytes
    result: GuardResult
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Unit:
    """One activation tensor with its producer and consumers: keeping these in float keeps it float."""

    tensor: str
    ops: list[str]
    depth: int


def float_units(float_model: bytes) -> tuple[list[_Unit], list[str], dict[str, str]]:
    """(units in depth order, all compute op names, op name -> op type) of the float graph."""
    ops = [op for op in graph_ops(debug_interpreter(float_model)) if op.op not in BOUNDARY_OPS]
    consumers: dict[int, list[str]] = {}
    for op in ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op.name)
    units = [_Unit(op.name, [op.name, *[c for c in consumers.get(op.output, []) if c != op.name]], op.depth) for op in ops]
    return units, [op.name for op in ops], {op.name: op.op for op in ops}


class Guard:
    def __init__(
        self,
        config: Any,
        graph: Any,
        float_model: bytes,
        stream: Stream,
        evaluation: Any,
        ranking: np.ndarray,
        progress: Progress,
        expected_samples: int | None,
    ) -> None:
        self.config = config
        self.graph = graph
        self.float_model = float_model
        self.stream = stream
        self.progress = progress
        self.expected = expected_samples
        self.ranking = ranking
        eval_tf = to_tf_layout(evaluation.inputs_nchw, graph.input_layout)
        self.budget = Budget(float_model, eval_tf, getattr(evaluation, "targets", None), float(config.max_drop))
        self.evaluations = 0

    @cached_property
    def ranking_ref(self) -> np.ndarray:
        """The float model on the ranking images: computed only if the guard ranks ops (the default run's
        usable check needs only the budget; 2.7 s of ResNet-50's run)."""
        return predict_flat(self.float_model, self.ranking)

    def score(self, model: bytes) -> float:
        """Output SQNR against the float model on the ranking (calibration) images."""
        self.evaluations += 1
        return sqnr_db(self.ranking_ref, predict_flat(model, self.ranking))

    def run(self, model: bytes, calibration: CalibrationResult, layers: LayerErrors, started: float) -> GuardRun:
        cfg = self.config
        progress = self.progress
        progress.stage(f"accuracy guard (max drop {cfg.max_drop:g} points)")
        before = self.budget.measure(model)
        base = GuardResult(
            max_drop=cfg.max_drop,
            max_fallback=cfg.max_fallback,
            metric=self.budget.metric,
            metric_label=self.budget.label,
            reference="float32 .tflite of the same graph",
            evaluation_samples=len(self.budget.inputs),
            metric_samples=self.budget.samples,
            ranking_samples=len(self.ranking),
            ranking_source="calibration images (not the evaluation images)",
            before=before,
        )
        if not self.budget.usable:
            message = "the model's output is not a classifier's, so a top-1 budget cannot be measured"
            result = replace(base, after=before, budget_met=None, result="int8", message=message,
                             seconds={"total": _since(started)})
            return GuardRun(model, result, [f"int8: {message}"])
        progress.log(f"int8 {self.budget.metric}: {before.value} ({before.drop} points below the float model)")
        if before.meets_budget:
            message = f"int8 meets the budget (drop {before.drop} <= {cfg.max_drop:g} points); no op kept in float"
            result = replace(base, after=before, budget_met=True, result="int8", message=message,
                             seconds={"total": _since(started)})
            return GuardRun(model, result, [])

        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        units, all_ops, op_types = float_units(calibration.calibrated)
        base_score = self.score(model)
        ranked = self.rank(units, calibration, base_score, layers)
        seconds["ranking"] = _since(t0)
        by_name = {r.name: r for r in layers.ops}
        ranking = tuple(
            RankedUnit(
                rank=k + 1,
                tensor=u.tensor,
                ops=tuple(u.ops),
                modules=tuple(sorted({(by_name[o].module or by_name[o].label) if o in by_name else o for o in u.ops})),
                gain_db=round(gain, 2),
                measured="alone" if alone else "with its depth segment",
            )
            for k, (u, gain, alone) in enumerate(ranked)
        )
        ranking_evaluations = self.evaluations

        t0 = time.perf_counter()
        steps: list[GuardStep] = []
        attempts: list[tuple[GuardMeasure, bytes, list[str], str]] = []
        cap = int(np.floor(cfg.max_fallback * len(all_ops) + 1e-9))
        useful = [(u, g) for u, g, _ in ranked if g > MIN_GAIN_DB]
        tried: set[int] = set()
        k = 1
        while useful:
            kept = _union([u.ops for u, _ in useful[:k]])
            while len(kept) > cap and k > 1:  # the largest prefix that fits under --max-fallback
                k -= 1
                kept = _union([u.ops for u, _ in useful[:k]])
            if len(kept) > cap or k in tried:
                break
            tried.add(k)
            step_start = time.perf_counter()
            candidate = quantize(calibration.model, cfg.io_type, kept)
            m = self._step(steps, f"keep the top {k} unit(s) in float", kept, candidate, step_start)
            attempts.append((m, candidate, kept, "int8 with float fallback"))
            if m.meets_budget or k >= len(useful):
                break
            k *= 2
        if not any(a[0].meets_budget for a in attempts):
            step_start = time.perf_counter()
            progress.stage("accuracy guard: last resort, int16 activations for the whole model (int16x8)")
            from conversions.engine.convert.tflite_variant import convert_variant

            candidate, _ = convert_variant(
                self.graph.concrete_function, "int16x8", self.stream, expected_samples=self.expected
            )
            m = self._step(steps, "int16 activations, int8 weights for the whole model (int16x8)", [], candidate,
                           step_start)
            attempts.append((m, candidate, [], "int16x8"))
        seconds["steps"] = _since(t0)

        met = [a for a in attempts if a[0].meets_budget]
        budget_met = bool(met)
        if met:
            final_m, final, kept, outcome = met[0]
        else:  # the best attempt, preferring fewer float ops; plain int8 if nothing improved on it. int16x8 runs
            # on reference kernels (7-23x slower than int8 in the zoo): worth it only when it meets the budget.
            fallbacks = [a for a in attempts if a[3] != "int16x8"]
            final_m, final, kept, _ = min([(before, model, [], ""), *fallbacks], key=lambda a: (a[0].drop, len(a[2])))
            outcome = "best attempt (over budget)"
        kept_rows = self._kept_rows(kept, ranked, op_types, layers)
        message = self._message(before, final_m, budget_met, outcome, kept_rows, len(all_ops))
        progress.log(message)
        result = replace(
            base,
            after=final_m,
            budget_met=budget_met,
            result=outcome,
            kept_float=kept_rows,
            kept_float_fraction=round(len(kept) / max(len(all_ops), 1), 4),
            total_ops=len(all_ops),
            ranking=ranking,
            ranking_evaluations=ranking_evaluations,
            ranking_baseline_sqnr_db=round(base_score, 2),
            steps=tuple(steps),
            cost=self._cost(model, final),
            seconds={**seconds, "total": _since(started)},
            message=message,
        )
        warnings = [] if budget_met else [f"int8: {message}"]
        cost = result.cost
        if cost.latency_ratio is not None and cost.latency_ratio > SLOW_GUARD_RATIO:
            warnings.append(f"int8: the guarded file runs {cost.latency_ratio:g}x as long as plain int8 at 1 thread "
                            f"({cost.latency_ms_before} -> {cost.latency_ms_after} ms): the price of meeting the budget")
        if outcome == "int16x8" and cfg.io_type != "float32":
            warnings.append(f"int8: the guard shipped int16x8, which keeps float32 input/output (the int8 "
                            f"input/output type {cfg.io_type} applies to int8 only)")
        return GuardRun(final, result, warnings)

    def _step(self, steps: list[GuardStep], action: str, kept: list[str], candidate: bytes, started: float) -> GuardMeasure:
        m = self.budget.measure(candidate)
        step = GuardStep(step=len(steps) + 1, action=action, float_ops=len(kept), ops=tuple(kept), value=m.value,
                         drop=m.drop, top1_agreement=m.top1_agreement, sqnr_db=m.sqnr_db, meets_budget=m.meets_budget,
                         size_bytes=len(candidate), seconds=_since(started))  # fmt: skip
        steps.append(step)
        self.progress.log(f"guard step {step.step}: {action}: {self.budget.metric} {m.value} (drop {m.drop}), "
                          f"SQNR {m.sqnr_db} dB")
        return m

    def rank(
        self, units: list[_Unit], calibration: CalibrationResult, base: float, layers: LayerErrors
    ) -> list[tuple[_Unit, float, bool]]:
        """Units by the output SQNR gained when kept in float, best first; screened in depth segments."""
        cfg = self.config

        def gain(group: list[_Unit]) -> float:
            kept = _union([u.ops for u in group])
            return self.score(quantize(calibration.model, cfg.io_type, kept)) - base

        added = {r.name: r.added_noise_db or 0.0 for r in layers.ops}
        budget = MAX_RANKING_EVALUATIONS
        if len(units) <= budget:
            scored = [(u, gain([u]), True) for u in units]
            self.progress.update(1.0, f"{len(units)} units measured one by one")
            return sorted(scored, key=lambda x: -x[1])
        size = int(np.ceil(len(units) / SEGMENTS))
        leaves = [units[i : i + size] for i in range(0, len(units), size)]
        scores = [gain(leaf) for leaf in leaves]
        while self.evaluations < budget:
            splittable = [i for i, leaf in enumerate(leaves) if len(leaf) > 1 and scores[i] > MIN_GAIN_DB]
            if not splittable:
                break
            i = max(splittable, key=lambda j: scores[j])
            leaf = leaves.pop(i)
            scores.pop(i)
            half = len(leaf) // 2
            for part in (leaf[:half], leaf[half:]):
                leaves.append(part)
                scores.append(gain(part))
            self.progress.update(min(self.evaluations / budget, 1.0), f"ranking: {self.evaluations} conversions")
        out: list[tuple[_Unit, float, bool]] = []
        for leaf, score in sorted(zip(leaves, scores), key=lambda x: -x[1]):
            # Inside a segment that was not split further, the op that adds the most noise goes first.
            for u in sorted(leaf, key=lambda u: -added.get(u.tensor, 0.0)):
                out.append((u, score, len(leaf) == 1))
        return out

    def _kept_rows(
        self, kept: list[str], ranked: list[tuple[_Unit, float, bool]], op_types: dict[str, str], layers: LayerErrors
    ) -> tuple[KeptFloat, ...]:
        rows = {r.name: r for r in layers.ops}
        rank_of: dict[str, tuple[int, _Unit, float, bool]] = {}
        for k, (u, g, alone) in enumerate(ranked):
            for name in u.ops:
                rank_of.setdefault(name, (k + 1, u, g, alone))
        out = []
        for name in kept:
            r, unit, g, alone = rank_of.get(name, (0, None, 0.0, False))
            row = rows.get(name)
            tensor_row = rows.get(unit.tensor) if unit else None
            tensor_label = tensor_row.label if tensor_row else (unit.tensor if unit else "?")
            how = "alone" if alone else "with its depth segment"
            out.append(KeptFloat(
                name=name,
                op=op_types.get(name, row.op if row else None),
                module=row.module if row else None,
                label=(row.label if row else "") or name,
                reason=(
                    f"keeps the output of {tensor_label} in float (producer and consumers); measured {how}, "
                    f"keeping it in float raised output SQNR on calibration images by {g:.1f} dB (rank {r} of "
                    f"{len(ranked)})"
                ),
            ))  # fmt: skip
        return tuple(out)

    def _cost(self, before: bytes, after: bytes) -> GuardCost:
        sizes = {"size_bytes_before": len(before), "size_bytes_after": len(after),
                 "size_ratio": round(len(after) / len(before), 4)}
        if after is before:
            return GuardCost(**sizes, latency_ratio=1.0)
        from conversions.engine.verify.interpreter import measure_latencies

        stats = measure_latencies({"before": before, "after": after}, self.budget.inputs[:1], threads=1, runs=30)
        b, a = stats["before"].median, stats["after"].median
        return GuardCost(**sizes, latency_ms_before=b, latency_ms_after=a, latency_ratio=round(a / b, 3) if b else None)

    def _message(
        self, before: GuardMeasure, after: GuardMeasure, met: bool, result: str, kept: tuple[KeptFloat, ...], total: int
    ) -> str:
        cfg = self.config
        names = ", ".join(dict.fromkeys(k.label for k in kept)) or "none"
        head = f"int8 missed the budget ({self.budget.metric} drop {before.drop} > {cfg.max_drop:g} points)"
        if met and result == "int16x8":
            return f"{head}; int16x8 for the whole model meets it (drop {after.drop})"
        if met:
            return (f"{head}; keeping {len(kept)} of {total} ops in float ({names}) meets it: drop "
                    f"{after.drop}, SQNR {before.sqnr_db} -> {after.sqnr_db} dB")
        return (f"{head} and no fallback within {{max_fallback}} {cfg.max_fallback:g} ({int(cfg.max_fallback * total)} "
                f"of {total} ops) or int16x8 meets it; best attempt: drop {after.drop} with {len(kept)} ops in "
                f"float ({names}). Raise {{max_fallback}} or {{max_drop}}, or improve the calibration data.")


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)


def _union(groups: Iterable[list[str]]) -> list[str]:
    return list(dict.fromkeys(name for group in groups for name in group))
