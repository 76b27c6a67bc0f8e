"""The accuracy guard on a model plain int8 genuinely breaks: it finds the planted layers and meets the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.spiky_model import PLANTED_MODULES

from conversions.engine.report.records import to_json
from conversions.engine.verify.interpreter import TFLiteModel, audit_ops, predict_many
from conversions.engine.verify.metrics import fidelity


def test_plain_int8_misses_the_budget(guarded_spiky):
    guard = guarded_spiky.guard
    assert guard["metric"] == "confident_top1_agreement"
    assert guard["before"]["drop"] > guard["max_drop"]
    assert guard["before"]["meets_budget"] is False
    # The converter's own min/max ranges are worse still: the planted range costs ~10 points.
    minmax = to_json(guarded_spiky.int8.calibration)["minmax_on_evaluation"]
    assert minmax["drop"] > 5.0


def test_guard_ranks_the_planted_layers_first_end_to_end(guarded_spiky):
    ranking = guarded_spiky.guard["ranking"]
    assert set(ranking[0]["modules"]) == set(PLANTED_MODULES)
    assert ranking[0]["measured"] == "alone"
    assert ranking[0]["gain_db"] > 3 * max(r["gain_db"] for r in ranking[1:])


def test_guard_keeps_exactly_the_planted_layers_and_meets_the_budget(guarded_spiky):
    guard = guarded_spiky.guard
    assert guard["budget_met"] is True
    assert guard["result"] == "int8 with float fallback"
    assert {k["module"] for k in guard["kept_float"]} == set(PLANTED_MODULES)
    assert all("raised output SQNR" in k["reason"] for k in guard["kept_float"])
    assert guard["after"]["drop"] <= guard["max_drop"]
    assert guard["kept_float_fraction"] <= guarded_spiky.config.max_fallback
    # The run's own verification, against PyTorch, agrees with the guard.
    assert guarded_spiky.int8.fidelity.confident_top1_agreement >= 99.0


def test_the_written_file_computes_the_planted_layers_in_float(guarded_spiky):
    path = Path(guarded_spiky.int8.output)
    assert path == guarded_spiky.output and path.is_file()
    _, float_ops, _ = audit_ops(path)
    float_convs = [op for op in float_ops if op.startswith("CONV_2D(")]
    kept = {k["name"] for k in guarded_spiky.guard["kept_float"]}
    assert {op[len("CONV_2D(") : -1] for op in float_convs} == kept
    logits = TFLiteModel(path).predict(np.zeros(TFLiteModel(path).input_shape, dtype=np.float32))[0]
    assert logits.shape == (1, 10) and np.isfinite(logits).all()


def test_guard_records_steps_cost_and_time(guarded_spiky, spiky_graph):
    guard = guarded_spiky.guard
    assert guard["steps"] and guard["steps"][-1]["meets_budget"]
    assert guard["steps"][0]["float_ops"] == 2
    cost = guard["cost"]
    # The guard's sizes are of the models it compared; the shipped file adds its TFLite metadata (about 1 KB).
    shipped = guarded_spiky.int8.size_bytes
    assert guarded_spiky.int8.metadata is not None
    assert cost["size_bytes_after"] < shipped <= cost["size_bytes_after"] + 2048
    assert cost["size_ratio"] > 1.0
    assert cost["latency_ms_before"] is not None and cost["latency_ms_after"] is not None
    assert guard["seconds"]["total"] > 0
    assert guarded_spiky.report.timings_s["accuracy_guard"] > 0
    assert guard["ranking_source"].startswith("calibration images")
    # The shipped model really agrees on images the guard never used for ranking.
    out = predict_many(TFLiteModel(guarded_spiky.output), spiky_graph.evaluation)[0]
    ref = predict_many(TFLiteModel(_float_model(spiky_graph)), spiky_graph.evaluation)[0]
    assert fidelity(ref, out).confident_top1_agreement >= 99.0


def test_report_records_the_calibration_method(guarded_spiky):
    extra = guarded_spiky.int8.to_dict()["extra"]
    assert extra["calibration_method"] == guarded_spiky.config.calibration_method
    assert extra["calibration"]["method"] == guarded_spiky.config.calibration_method
    assert extra["calibration"]["samples"] == 100


def _float_model(spiky_graph) -> bytes:
    from conversions.engine.convert.tflite_variant import convert_variant

    return convert_variant(spiky_graph.graph.concrete_function, "none")[0]
