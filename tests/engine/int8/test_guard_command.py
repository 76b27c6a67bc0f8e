"""``export_models`` flags for the guard, and a budget that cannot be met: suffixed file, non-zero exit."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from support.cli import raises_worded

from conversions.engine.config import ExportConfig, ModelSpec
from conversions.management.commands.export_models import Command
from engine.int8.conftest import PHOTOS, SPIKY_MODEL


def _opts(**overrides):
    parser = Command().create_parser("manage.py", "export_models")
    opts = vars(parser.parse_args(["--model", "efficientnet-lite0"]))
    opts.update(overrides)
    return opts


def test_flags_reach_the_config():
    config = Command.build_config(_opts(calibration="mse", max_drop=1.5, max_fallback=0.1))
    assert (config.calibration_method, config.max_drop, config.max_fallback) == ("mse", 1.5, 0.1)
    default = Command.build_config(_opts())
    assert default.calibration_method == "percentile" and default.max_drop is None and default.max_fallback == 0.2
    assert ExportConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [({"calibration_method": "kl"}, "--calibration"), ({"max_drop": -1.0}, "--max-drop"), ({"max_fallback": 1.5}, "--max-fallback")],
)
def test_bad_guard_values_are_refused(kwargs, message):
    with raises_worded(ValueError, message):
        ExportConfig(model=ModelSpec(model="efficientnet-lite0"), **kwargs)


def test_a_budget_that_cannot_be_met_exits_non_zero_and_never_writes_the_asked_name(spiky_checkpoint, tmp_path):
    """No fallback fits in 10% of the ops and int16x8 does not fix the planted weights either."""
    output = tmp_path / "spiky.tflite"
    with pytest.raises(CommandError) as err:
        call_command(
            "export_models", "--checkpoint", str(spiky_checkpoint), "--model", SPIKY_MODEL, "--trust-checkpoint",
            "--input-shape", "1,3,32,32", "--quantize", "int8", "--dataset-dir", str(PHOTOS),
            "--num-calib-samples", "100", "--num-eval-samples", "188", "--output", str(output),
            "--max-drop", "0", "--max-fallback", "0.1", "--no-record",
        )
    message = str(err.value)
    assert "missed the budget" in message and "best attempt" in message and "--max-fallback" in message
    assert not output.exists()
    written = tmp_path / "spiky_over_budget.tflite"
    assert written.is_file() and str(written) in message
    import json

    report = json.loads((tmp_path / "spiky_report.json").read_text())
    guard = report["variants"][0]["extra"]["guard"]
    assert guard["budget_met"] is False and guard["result"] == "best attempt (over budget)"
    assert guard["steps"][-1]["action"].startswith("int16 activations")
    assert any("missed the budget" in w for w in report["warnings"])
