"""The run record's lifecycle: each status change happens once, terminal states stick, artifacts are immutable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from support.files import staff_member
from django.utils import timezone

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.execution import RunCancelled, RunProgress
from conversions.models import Artifact, Checkpoint, ConversionRun, ImmutableError
from conversions.reaper import reap_dead_runs

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_user_model):
    user = django_user_model.objects.create_user("ana", password="pw")
    config = ExportConfig(model=ModelSpec(model="efficientnet-lite0"), data=DataSpec(seed=7))
    return ConversionRun.launch(config, user, ConversionRun.Source.CLI)


def test_cli_run_is_recorded_queued_with_its_config(run):
    assert run.status == "queued"
    assert run.source == "cli"
    assert run.model_name == "efficientnet-lite0"
    assert run.seed == 7
    assert ExportConfig.from_dict(run.config).data.seed == 7


def test_a_run_is_claimed_once(run):
    assert run.start("worker-a") is True
    other = ConversionRun.objects.get(pk=run.pk)
    assert other.start("worker-b") is False
    run.refresh_from_db()
    assert (run.status, run.worker, run.worker_pid) == ("running", "worker-a", os.getpid())


def test_a_terminal_state_is_never_overwritten(run):
    run.start("w")
    assert run.cancel("stop") is True
    assert run.terminate("failed", "late failure") is False
    run.refresh_from_db()
    assert (run.status, run.error) == ("cancelled", "stop")
    assert run.finished is not None and run.duration_s is not None


def test_progress_is_written_onto_the_row_and_sees_a_cancel(run):
    run.start("w")
    progress = RunProgress(run, interval=0)
    progress.stage("load model")
    progress.update(0.5)
    progress.log("hello\nworld")
    run.refresh_from_db()
    assert run.stage == "load model" and run.progress == 0.5
    assert run.log.endswith("hello\nworld\n")
    assert [name for name, _ in run.stage_timeline] == ["load model"]
    ConversionRun.objects.get(pk=run.pk).cancel()
    with pytest.raises(RunCancelled):
        progress.log("more")


def test_a_run_whose_process_died_is_reaped_with_the_reason(run):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.start("w", hostname=socket.gethostname(), pid=dead.pid)
    ConversionRun.objects.filter(pk=run.pk).update(stage="export ONNX")
    reaped = reap_dead_runs(check_queue=False)
    assert [r.pk for r in reaped] == [run.pk]
    run.refresh_from_db()
    assert run.status == "failed"
    assert f"process {dead.pid}" in run.error and "export ONNX" in run.error


def test_a_run_with_a_stale_heartbeat_on_another_host_is_reaped(run, settings):
    run.start("w", hostname="elsewhere", pid=1)
    stale = timezone.now() - timezone.timedelta(seconds=settings.QUANTWEB_RUN_HEARTBEAT_TIMEOUT + 5)
    ConversionRun.objects.filter(pk=run.pk).update(heartbeat=stale)
    reap_dead_runs(check_queue=False)
    run.refresh_from_db()
    assert run.status == "failed" and "No heartbeat" in run.error


def test_a_live_run_is_left_alone(run):
    run.start("w")
    assert reap_dead_runs(check_queue=False) == []
    assert ConversionRun.objects.get(pk=run.pk).status == "running"


def test_artifacts_are_immutable(run, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    out = tmp_path / "m.tflite"
    out.write_bytes(b"tflite")
    artifact = Artifact.record(run, "int8", out, sha256="0" * 64, size_bytes=6)
    assert artifact.path == "m.tflite", "stored relative to MEDIA_ROOT"
    assert oct(out.stat().st_mode & 0o777) == "0o400", "read-only, and owner-only like every stored file"
    artifact.sha256 = "1" * 64
    with pytest.raises(ImmutableError):
        artifact.save()
    with pytest.raises(ImmutableError):
        artifact.delete()


def test_checkpoint_versions_are_numbered_per_name():
    Checkpoint.objects.create(name="resnet", version=Checkpoint.next_version("resnet"), input_shape=[1, 3, 8, 8])
    Checkpoint.objects.create(name="resnet", version=Checkpoint.next_version("resnet"), input_shape=[1, 3, 8, 8])
    assert Checkpoint.next_version("resnet") == 3
    assert Checkpoint.next_version("other") == 1


def test_uploaded_architecture_code_needs_trust(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "checkpoints/m/v1").mkdir(parents=True)
    (tmp_path / "checkpoints/m/v1/model.py").write_text("def build(): ...\n")
    ckpt = Checkpoint.objects.create(name="m", version=1, architecture="build", input_shape=[1, 3, 8, 8],
                                     architecture_file="checkpoints/m/v1/model.py")  # fmt: skip
    assert not ckpt.launchable
    ckpt.trusted = True  # a flag alone is not trust: it must be recorded for this version's digest
    assert not ckpt.launchable and ckpt.model_spec().trust_checkpoint is False
    ckpt.trust(staff_member())
    assert ckpt.launchable and ckpt.trusted_by.username == "trusting-staff" and ckpt.trusted_at is not None
    assert ckpt.model_spec().trust_checkpoint is True


def test_a_run_whose_int8_missed_its_budget_is_failed_with_the_best_attempt_kept(run, tmp_path):
    from conversions.engine.report.int8_results import GuardResult
    from conversions.engine.report.results import ExportReport, Fidelity, VariantReport

    best = tmp_path / "m_int8_over_budget.tflite"
    best.write_bytes(b"tflite")
    guard = GuardResult(budget_met=False, message="int8 missed the budget (drop 4.0 > 1.0 points) even with fallback.")
    variant = VariantReport(
        variant="int8", output=str(best), size_bytes=6, sha256="0" * 64, float32_size_bytes=24, size_ratio=0.25,
        input={}, output_details={}, latency_ms={}, fidelity=Fidelity(10, 90.0, 5, 80.0, 100.0, 12.0),
        fully_integer=True, guard=guard,
    )
    report = ExportReport(
        model={"name": "m"}, variants=(variant,), calibration={}, evaluation={}, dataset=None,
        conversion_route={}, timings_s={}, versions={},
    )
    run.start("w")
    assert run.finish(report) is True
    run.refresh_from_db()
    assert run.status == "failed"
    assert "missed the budget" in run.error and str(best) in run.error
    assert [a.variant for a in run.artifacts.all()] == ["int8"]
