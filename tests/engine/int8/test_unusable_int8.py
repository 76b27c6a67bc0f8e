"""A default run (no ``--max-drop``) whose plain int8 file is unusable runs the accuracy guard by itself and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.spiky_model import PLANTED_MODULES, make_weights

from conversions.engine.int8.build import AUTO_MAX_DROP
from conversions.engine.report.records import to_json
from conversions.engine.report.summary import format_summary
from conversions.engine.verify.interpreter import audit_ops

from .conftest import spiky_config

BROKEN_SPIKE_GAIN = 1e4


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory):
    from conversions.engine.pipeline import run_export

    work = tmp_path_factory.mktemp("unusable")
    checkpoint = work / "broken.pth"
    torch.save(make_weights(spike_gain=BROKEN_SPIKE_GAIN), checkpoint)
    config = spiky_config(checkpoint, work / "broken_int8.tflite")
    assert config.max_drop is None  # the default: nobody asked for a budget
    return run_export(config), config


def test_an_unusable_int8_file_triggers_the_guard_with_a_moderate_budget(broken_run):
    report, _ = broken_run
    guard = to_json(report.variant("int8").guard)
    assert guard["max_drop"] == AUTO_MAX_DROP
    # Plain int8 really was unusable: most decisions changed, measured on the 188 held-out images.
    assert guard["before"]["top1_agreement"] < 50.0 or guard["before"]["sqnr_db"] < 10.0
    assert guard["evaluation_samples"] >= 100
    assert guard["budget_met"] is True
    assert {k["module"] for k in guard["kept_float"]} == set(PLANTED_MODULES)


def test_the_guarded_file_ships_under_the_asked_name_and_computes_the_planted_layers_in_float(broken_run):
    report, config = broken_run
    path = Path(report.variant("int8").output)
    assert path == Path(config.output) and path.is_file()
    _, float_ops, _ = audit_ops(path)
    assert any(op.startswith("CONV_2D(") for op in float_ops)
    # Against PyTorch, on the run's own held-out images, the shipped file is usable again.
    assert report.variant("int8").fidelity.top1_agreement >= 90.0


def test_the_run_says_loudly_what_it_did_in_its_warnings_and_summary(broken_run):
    report, _ = broken_run
    notes = [w for w in report.warnings if "UNUSABLE" in w]
    assert len(notes) == 1
    note = notes[0]
    assert "95 % interval" in note and "188 held-out images" in note
    assert f"budget of {AUTO_MAX_DROP:g} points" in note and "the guarded file ships" in note
    assert note in format_summary(report)
    assert report.budget_misses() == []  # met: the CLI exits 0, the file is the guarded one


def test_a_usable_int8_file_runs_no_guard_and_raises_no_alarm(spiky_checkpoint, tmp_path):
    from conversions.engine.pipeline import run_export

    report = run_export(spiky_config(spiky_checkpoint, tmp_path / "spiky_int8.tflite"))
    int8 = report.variant("int8")
    assert int8.fidelity.top1_agreement >= 50.0 and int8.fidelity.sqnr_db >= 10.0
    assert int8.guard is None
    assert not [w for w in report.warnings if "UNUSABLE" in w]
    assert Path(int8.output) == tmp_path / "spiky_int8.tflite"


def test_unusable_means_the_whole_agreement_interval_is_under_half_or_the_sqnr_under_10_db():
    from conversions.engine.int8.build import is_unusable
    from conversions.engine.report.int8_results import GuardMeasure

    def measure(agreement: float, sqnr: float) -> GuardMeasure:
        return GuardMeasure(value=agreement, drop=100 - agreement, top1_agreement=agreement, sqnr_db=sqnr,
                            meets_budget=False)  # fmt: skip

    assert not is_unusable(measure(37.5, 14.0), 16)  # 6 of 16: 95 % interval 18-61 %, could well be usable
    assert is_unusable(measure(6.25, 14.0), 16)  # 1 of 16: at most 28 %
    assert is_unusable(measure(37.5, 14.0), 188)  # 70 of 188: at most 45 %
    assert is_unusable(measure(100.0, 9.0), 188)  # every decision kept, but the scores themselves are noise
