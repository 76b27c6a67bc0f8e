"""``manage.py export_models``: the CLI writes next to the checkpoint, prints the summary, refuses bad flags
with the reason, and records a run unless told not to."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from conversions.models import ConversionRun
from engine.conftest import SMALL_MODEL, TrainedModel, assert_flags_exist


def _export_models(trained_model: TrainedModel, checkpoint: Path, *flags: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "export_models",
        "--checkpoint", str(checkpoint),
        "--model", SMALL_MODEL, "--trust-checkpoint",
        "--input-shape", "1,3,32,32",
        "--dataset-dir", str(trained_model.dataset_dir),
        "--num-calib-samples", "16",
        "--num-eval-samples", "16",
        *flags,
        stdout=out,
        stderr=err,
    )  # fmt: skip
    return out.getvalue(), err.getvalue()


def test_writes_int8_next_to_the_checkpoint_and_prints_the_summary(trained_model: TrainedModel, tmp_path: Path) -> None:
    checkpoint = trained_model.copy_to(tmp_path / "models")

    # No database marker: --no-record must not touch the database at all.
    stdout, _ = _export_models(trained_model, checkpoint, "--no-record")

    tflite = tmp_path / "models" / "shapes_net_int8.tflite"
    assert tflite.is_file()
    report = json.loads((tmp_path / "models" / "shapes_net_int8_report.json").read_text())
    assert report["variant"] == "int8" and report["fully_integer"] is True
    header = next(line for line in stdout.splitlines() if line.startswith("variant"))
    for column in ("size", "latency ms (p50/p90)", "top-1 agree", "SQNR dB", "integer-only"):
        assert column in header
    row = next(line for line in stdout.splitlines() if line.startswith("int8 "))
    column = header.index("integer-only")  # a fixed-width table: cells start where their heading does
    assert row[column:].split()[0] == "yes"
    assert f"wrote {tflite}" in stdout
    assert "route: onnxsim+onnx2tf" in stdout


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--quantize", "int9"], "--quantize 'int9' is not a quantization; choose from float32 (or none), float16, dynamic, int8, int16x8"),
        (["--input-shape", "1,3,32"], "--input-shape '1,3,32' must be four positive integers"),
        (["--latency-runs", "5"], "--latency-runs 5 is too few for the median and p90 to mean something; give 30 or more"),
        (["--quantize", "none,int8", "--output", "x.tflite"], "--output x.tflite names one file but --quantize asks for 2 (float32, int8); give --output-dir for several"),
        (["--model-kwargs", "num_classes"], "--model-kwargs 'num_classes' is not name=value, e.g. num_classes=7"),
        (["--threads", "one"], "--threads 'one' is not a list of integers"),
        (["--io", "int4"], "--io 'int4' is not one of float32, uint8, int8"),
        (["--model", "qw_missing_pkg.nets:build"], "cannot import module 'qw_missing_pkg.nets'"),
    ],
)
def test_bad_flags_give_a_command_error_with_the_reason(
    trained_model: TrainedModel, tmp_path: Path, flags: list[str], expected: str
) -> None:
    with pytest.raises(CommandError) as err:
        _export_models(trained_model, trained_model.checkpoint, "--no-record", "--output-dir", str(tmp_path), *flags)
    assert expected in str(err.value)
    assert_flags_exist(str(err.value))
    assert list(tmp_path.iterdir()) == []


def test_missing_checkpoint_gives_a_command_error(trained_model: TrainedModel, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as err:
        _export_models(trained_model, tmp_path / "nope.pth", "--no-record")
    assert f"checkpoint {tmp_path / 'nope.pth'} does not exist" in str(err.value)


@pytest.mark.django_db
def test_a_recorded_run_is_a_succeeded_cli_run_with_its_artifact(trained_model: TrainedModel, tmp_path: Path) -> None:
    checkpoint = trained_model.copy_to(tmp_path / "models")

    _, stderr = _export_models(trained_model, checkpoint, "--quantize", "dynamic")

    run = ConversionRun.objects.get()
    assert f"recorded as conversion run {run.pk}" in stderr
    assert run.source == ConversionRun.Source.CLI
    assert run.status == ConversionRun.Status.SUCCEEDED
    assert run.model_name == "shapes_net"
    assert run.variants == "dynamic"
    assert run.primary_variant == "dynamic"
    tflite = tmp_path / "models" / "shapes_net_dynamic.tflite"
    assert run.size_bytes == tflite.stat().st_size
    assert run.report["variant"] == "dynamic"
    assert run.sqnr_db is not None and run.sqnr_db >= 20
    assert run.finished is not None and run.error == ""
    artifact = run.artifacts.get()
    assert (artifact.variant, artifact.size_bytes) == ("dynamic", tflite.stat().st_size)
