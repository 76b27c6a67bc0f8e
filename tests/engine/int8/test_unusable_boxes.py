"""The unusable-file check on an output without classes: judged on SQNR alone, never on a box tensor's "top-1"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from support.spiky_model import make_weights

from conversions.engine.config import ModelSpec
from conversions.engine.int8.build import UNUSABLE_SQNR_DB
from conversions.engine.report.summary import format_summary

from .conftest import SPIKY_SHAPE, spiky_config

BOXES_MODEL = f"{Path(__file__).resolve().parents[2] / 'support' / 'spiky_model.py'}:build_boxes"


def boxes_run(tmp_path: Path, spike_gain: float):
    from conversions.engine.pipeline import run_export

    checkpoint = tmp_path / "boxes.pth"
    torch.save(make_weights(spike_gain=spike_gain), checkpoint)
    config = spiky_config(checkpoint, tmp_path / "boxes_int8.tflite")
    model = ModelSpec(checkpoint=str(checkpoint), model=BOXES_MODEL, input_shape=SPIKY_SHAPE, trust_checkpoint=True)
    return run_export(dataclasses.replace(config, model=model))


def test_a_box_output_int8_cannot_guard_runs_no_guard_and_warns_by_its_sqnr(tmp_path):
    report = boxes_run(tmp_path, 1e4)
    int8 = report.variant("int8")
    assert int8.fidelity.top1_agreement is None  # (N, 48, 16): no classes, so no top-1 anywhere in the record
    assert int8.guard is None  # nothing to guard by: a box tensor's argmax is not a decision
    assert Path(int8.output) == tmp_path / "boxes_int8.tflite"  # no *_over_budget name, no int16x8 swap
    notes = [w for w in report.warnings if "UNUSABLE" in w]
    # The planted 1e4 outliers leave the rest of the tensor no int8 level: its SQNR really is under the bar.
    assert int8.fidelity.sqnr_db < UNUSABLE_SQNR_DB
    assert len(notes) == 1 and "not a classifier's" in notes[0] and "dB" in notes[0]
    summary = format_summary(report)
    assert "--calibration percentile" in format_summary(report, {"calibration_method": "--calibration"})
    assert "{calibration_method}" not in summary


def test_a_faithful_box_output_raises_no_alarm(tmp_path):
    report = boxes_run(tmp_path, 1.0)  # no planted outliers: an ordinary CNN
    int8 = report.variant("int8")
    assert int8.fidelity.sqnr_db >= UNUSABLE_SQNR_DB
    assert int8.guard is None and not [w for w in report.warnings if "UNUSABLE" in w]
