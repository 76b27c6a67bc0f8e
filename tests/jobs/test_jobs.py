"""Runs executed by real RQ worker processes against this machine's Redis and PostgreSQL, with the real engine.

Each worker is ``manage.py rqworker`` in a subprocess that sees pytest-django's test database (through
DATABASE_URL), this session's own queue and this test's MEDIA_ROOT.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import django_rq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from support.files import (
    register_tiny,
    write_image_folder,
    write_tiny_model,
    zip_folder,
)
from support.workers import WorkerPool, kill_worker, purge_queue, wait_for

from conversions import jobs
from conversions import queue as rq_plumbing
from conversions.models import Checkpoint, ConversionRun, Dataset
from conversions.run_settings import RunSettings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RUN_TIMEOUT = 240


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUANTWEB_RUN_HEARTBEAT_SECONDS = 2
    return settings.MEDIA_ROOT


@pytest.fixture
def queue(settings):
    q = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(q)
    yield q
    purge_queue(q)


@pytest.fixture
def workers(tmp_path):
    pool = WorkerPool(tmp_path)
    yield pool.start
    pool.close()


@pytest.fixture
def tiny(tmp_path, media, admin_user):
    return register_tiny(tmp_path, admin_user)


def _launch(ckpt, ds, user, variants=("int8",)) -> ConversionRun:
    config = RunSettings(tuple(variants), num_calib_samples=8).config_for(ckpt, ds)
    return ConversionRun.launch(config, user, checkpoint=ckpt, dataset=ds)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT) -> None:
    try:
        assert proc.wait(timeout=timeout) == 0, log.read_text()[-3000:]
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker did not finish in {timeout} s:\n{log.read_text()[-3000:]}")


def test_a_run_launched_from_the_form_is_executed_by_a_worker_and_downloads(
    admin_client, media, queue, workers, tmp_path
):
    checkpoint_path, source = write_tiny_model(tmp_path / "model")
    response = admin_client.post(reverse("conversions:checkpoint_new"), {
        "name": "tiny", "file": SimpleUploadedFile("tiny.pth", checkpoint_path.read_bytes()),
        "architecture": "build", "architecture_file": SimpleUploadedFile("model.py", source.read_bytes()),
        "input_shape": "1,3,32,32", "preprocess": "imagenet", "trusted": "on",
    })  # fmt: skip
    assert response.status_code == 302
    archive = zip_folder(write_image_folder(tmp_path / "pets"), tmp_path / "pets.zip")
    response = admin_client.post(reverse("conversions:dataset_new"), {
        "name": "pets", "archive": SimpleUploadedFile("pets.zip", archive.read_bytes()), "dataset_type": "auto",
    })  # fmt: skip
    assert response.status_code == 302

    started = time.monotonic()
    response = admin_client.post(reverse("conversions:run_new"), {
        "checkpoint": Checkpoint.objects.get().pk, "dataset": Dataset.objects.get().pk,
        "variants": ["float32", "int8"], "num_calib_samples": 8, "preprocess": "", "seed": 3,
    })  # fmt: skip
    assert time.monotonic() - started < 2, "launching returns at once"
    run = ConversionRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.status == "queued" and run.job_id and queue.count == 1

    _finish(workers(), tmp_path / "worker-0.log")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + run.log
    assert run.worker and run.duration_s > 0 and run.report["variants"]
    assert run.size_bytes and run.size_ratio and run.primary_variant == "int8"
    assert "stage: convert int8" in run.log

    history = admin_client.get(reverse("conversions:history"))
    assert f"#{run.pk}" in history.content.decode()
    detail = admin_client.get(run.get_absolute_url()).content.decode()
    assert "chart-data-size" in detail and "plotly.min.js" in detail

    artifacts = {a.variant: a for a in run.artifacts.all()}
    assert set(artifacts) == {"float32", "int8"}
    int8 = artifacts["int8"]
    assert int8.filename == f"tiny-v1-int8-r{run.pk}.tflite"
    assert artifacts["float32"].filename == f"tiny-v1-float32-r{run.pk}.tflite"
    download = admin_client.get(int8.get_absolute_url())
    body = b"".join(download.streaming_content)
    assert f'filename="{int8.filename}"' in download["Content-Disposition"]
    assert hashlib.sha256(body).hexdigest() == int8.sha256 == run.report["sha256"]
    assert len(body) == int8.size_bytes
    assert body[4:8] == b"TFL3", "a TFLite flatbuffer"


def test_a_worker_killed_mid_run_leaves_the_run_failed_with_a_reason(
    admin_client, admin_user, tiny, queue, workers
):
    run = _launch(*tiny, admin_user)
    proc = workers(burst=False)
    wait_for(lambda: ConversionRun.objects.filter(pk=run.pk, status="running").exclude(stage="starting").exists(),
             timeout=120, what="the run to start")  # fmt: skip
    run.refresh_from_db()
    assert run.worker_pid in kill_worker(proc)

    page = admin_client.get(run.get_absolute_url())  # the page notices the dead run as it loads
    run.refresh_from_db()
    assert run.status == "failed"
    assert "died" in run.error and str(run.worker_pid) in run.error
    assert "died" in page.content.decode()
    assert not run.portal_output_dir().exists(), "no partial outputs stay behind"

    response = admin_client.post(reverse("conversions:run_rerun", args=[run.pk]))
    rerun = ConversionRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == rerun.get_absolute_url()
    assert (rerun.status, rerun.variants, rerun.checkpoint_id) == ("queued", run.variants, run.checkpoint_id)


def test_two_workers_finish_several_runs_each_exactly_once(admin_user, tiny, queue, workers, tmp_path):
    runs = [_launch(*tiny, admin_user, variants=("float16",)) for _ in range(4)]
    procs = [workers(), workers()]
    for i, proc in enumerate(procs):
        _finish(proc, tmp_path / f"worker-{i}.log", timeout=RUN_TIMEOUT * 2)
    done = ConversionRun.objects.filter(pk__in=[r.pk for r in runs])
    assert sorted(r.status for r in done) == ["succeeded"] * 4, [r.error for r in done]
    for run in done:
        assert run.log.count("started on") == 1
        assert run.artifacts.count() == 1
    assert len({r.worker for r in done}) == 2, "both workers took runs"
    assert queue.count == 0


def test_a_job_for_a_run_already_claimed_does_nothing(admin_user, tiny, queue):
    run = _launch(*tiny, admin_user)
    run.start("another-worker")
    result = jobs.run_conversion(run.pk)
    assert "not queued" in result["skipped"]
    run.refresh_from_db()
    assert (run.status, run.worker) == ("running", "another-worker")


def test_cancelling_a_queued_run_removes_its_job(admin_client, admin_user, tiny, queue, workers, tmp_path):
    run = _launch(*tiny, admin_user)
    assert queue.count == 1
    admin_client.post(reverse("conversions:run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == "cancelled" and queue.count == 0
    _finish(workers(), tmp_path / "worker-0.log")
    run.refresh_from_db()
    assert run.status == "cancelled" and not run.artifacts.exists()


def test_cancelling_a_running_run_stops_its_worker(admin_client, admin_user, tiny, queue, workers, tmp_path):
    run = _launch(*tiny, admin_user)
    proc = workers()
    wait_for(lambda: ConversionRun.objects.filter(pk=run.pk, status="running").exists(), timeout=120,
             what="the run to start")  # fmt: skip
    admin_client.post(reverse("conversions:run_cancel", args=[run.pk]))
    _finish(proc, tmp_path / "worker-0.log", timeout=60)
    run.refresh_from_db()
    assert run.status == "cancelled" and "Cancelled by admin" in run.error
    assert not run.artifacts.exists()
    assert not run.portal_output_dir().exists()


def test_a_run_that_cannot_be_enqueued_says_how_to_start_redis(admin_user, tiny, monkeypatch):
    import redis
    from rq import Queue

    dead = Queue("nowhere", connection=redis.Redis(port=1, socket_connect_timeout=0.5))
    monkeypatch.setattr(rq_plumbing.django_rq, "get_queue", lambda name: dead)
    run = _launch(*tiny, admin_user)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "is unreachable" in run.error and "redis-server --daemonize yes" in run.error
