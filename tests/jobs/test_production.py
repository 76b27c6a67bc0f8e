"""Serving like production: the README's gunicorn command, check --deploy, login throttling, a heartbeat that
survives database errors, and dead runs reaped by the reaper process without anyone loading a page."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from support.files import register_tiny
from support.workers import WorkerPool, purge_queue, wait_for, worker_environment

from conversions import execution
from conversions.models import ConversionRun
from conversions.reaper import reap_dead_runs
from conversions.run_settings import RunSettings

ROOT = Path(settings.BASE_DIR)


def production_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The README's production settings (behind a TLS proxy), on this test's database and queue."""
    return worker_environment(
        DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), QUANTWEB_HTTPS="1", ALLOWED_HOSTS="127.0.0.1,localhost",
        QUANTWEB_VAR_DIR=str(tmp_path / "var"), **extra,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = production_environment(tmp_path, QUANTWEB_TRUSTED_PROXIES="1")
    env["REDIS_URL"] = "redis://:a-password@127.0.0.1:6379/0"  # the README's production section, as written
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_web_process_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_environment(tmp_path)
    env.pop("SECRET_KEY")
    result = subprocess.run([sys.executable, "-c", "import quantweb.wsgi"], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=300)  # fmt: skip
    assert result.returncode != 0 and "SECRET_KEY is not set" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_pages_and_static_files_as_the_readme_says(tmp_path):
    env = production_environment(tmp_path)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=300)  # fmt: skip
    port = _free_port()
    log = open(tmp_path / "gunicorn.log", "wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "quantweb.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        proxied = {"X-Forwarded-Proto": "https"}  # what the TLS proxy in front of gunicorn adds

        def get(path: str, headers=None):
            request = urllib.request.Request(base + path, headers=headers or {})
            try:
                return urllib.request.build_opener(_NoRedirect).open(request, timeout=10)
            except urllib.error.HTTPError as err:
                return err

        wait_for(lambda: _answers(base), timeout=120, what="gunicorn to listen")
        login = get("/accounts/login/", proxied)
        page = login.read().decode()
        assert login.status == 200 and "csrfmiddlewaretoken" in page
        static = re.search(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)
        assert static, "the login page links a static file"
        asset = get(static.group(1), proxied)
        assert asset.status == 200 and len(asset.read()) > 100
        assert re.search(r"\.[0-9a-f]{12}\.", static.group(1)), "WhiteNoise's hashed, cacheable name"
        plain = get("/accounts/login/")
        assert plain.status == 301 and plain.headers["Location"].startswith("https://")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


@pytest.mark.django_db(transaction=True)
def test_runserver_without_collectstatic_serves_pages_and_says_what_to_run(tmp_path):
    env = production_environment(tmp_path)  # a fresh var/: STATIC_ROOT holds nothing collected
    port = _free_port()
    log_path = tmp_path / "runserver.log"
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT,
                              env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base), timeout=120, what="runserver to listen")
        proxied = {"X-Forwarded-Proto": "https"}
        page = urllib.request.urlopen(urllib.request.Request(base + "/accounts/login/", headers=proxied), timeout=30)
        html = page.read().decode()
        assert page.status == 200 and "csrfmiddlewaretoken" in html
        static = re.search(r'(?:href|src)="(/static/[^"]+\.css)"', html).group(1)
        asset = urllib.request.urlopen(urllib.request.Request(base + static, headers=proxied), timeout=30)
        assert asset.status == 200 and len(asset.read()) > 100
        assert not list((tmp_path / "var" / "staticfiles").iterdir()), "nothing was collected"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    hints = [line for line in log_path.read_text().splitlines() if "collectstatic" in line]
    assert len(hints) == 1 and "run '.venv/bin/python manage.py collectstatic --noinput'" in hints[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _answers(base: str) -> bool:
    try:
        urllib.request.build_opener(_NoRedirect).open(base + "/accounts/login/", timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@pytest.mark.django_db
def test_logins_are_throttled_after_repeated_failures(client, django_user_model):
    django_user_model.objects.create_user("ana", password="right-password")
    url = reverse("login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(url, {"username": "ana", "password": "wrong"}).status_code == 200
    assert client.post(url, {"username": "ana", "password": "wrong"}).status_code == 429
    locked = client.post(url, {"username": "ana", "password": "right-password"})
    assert locked.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_survives_transient_database_errors(monkeypatch, tmp_path, settings):
    from conversions.models import Checkpoint

    ckpt = Checkpoint.objects.create(name="m", version=1, architecture="efficientnet-lite0", input_shape=[1, 3, 8, 8])
    run = ConversionRun.objects.create(checkpoint=ckpt, variants="float16", model_name="m", status="running",
                                       heartbeat=timezone.now() - timedelta(hours=1))  # fmt: skip
    failures = iter([OperationalError("database is locked")] * 3)
    real = execution.close_old_connections

    def flaky():
        error = next(failures, None)
        if error is not None:
            raise error
        real()

    monkeypatch.setattr(execution, "close_old_connections", flaky)
    beat = execution.Heartbeat(run, every=0.05)
    with beat:
        wait_for(lambda: ConversionRun.objects.get(pk=run.pk).heartbeat > timezone.now() - timedelta(seconds=5),
                 timeout=10, what="a heartbeat after the errors")  # fmt: skip
        assert beat._thread.is_alive()


@pytest.mark.django_db
def test_a_run_that_never_reached_its_queue_is_reaped_with_a_reason():
    run = ConversionRun.objects.create(variants="float16", model_name="m", queue_name="conversions",
                                       created=timezone.now() - timedelta(minutes=5))  # fmt: skip
    assert [r.pk for r in reap_dead_runs(check_queue=False)] == [run.pk]
    run.refresh_from_db()
    assert run.status == "failed" and "never reached its queue" in run.error


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_sigkilled_mid_conversion_is_failed_by_the_reaper_within_a_minute(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUANTWEB_RUN_HEARTBEAT_SECONDS = 2
    queue = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(queue)
    pool = WorkerPool(tmp_path)
    reaper = subprocess.Popen([sys.executable, "manage.py", "reap_runs", "--every", "2"], cwd=ROOT,
                              env=worker_environment(), stdout=open(tmp_path / "reaper.log", "wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        ckpt, ds = register_tiny(tmp_path)
        config = RunSettings(("int8",), num_calib_samples=8).config_for(ckpt, ds)
        run = ConversionRun.launch(config, None, checkpoint=ckpt, dataset=ds)
        pool.start(burst=False)
        wait_for(lambda: ConversionRun.objects.filter(pk=run.pk, status="running", stage__startswith="convert")
                 .exists(), timeout=180, what="the run to reach a conversion stage")  # fmt: skip
        run.refresh_from_db()
        os.kill(run.worker_pid, signal.SIGKILL)
        killed_at = time.monotonic()

        wait_for(lambda: ConversionRun.objects.filter(pk=run.pk, status="failed").exists(), timeout=60,
                 what="the reaper to mark the run failed")  # fmt: skip
        elapsed = time.monotonic() - killed_at
        print(f"run {run.pk} marked failed {elapsed:.1f} s after SIGKILL of pid {run.worker_pid}")
        assert elapsed < 60
        run.refresh_from_db()
        assert str(run.worker_pid) in run.error and ("died" in run.error or "terminated" in run.error)
        folder = run.portal_output_dir()
        assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()], "no partial file"
    finally:
        os.killpg(reaper.pid, signal.SIGKILL)
        reaper.wait()
        pool.close()
        purge_queue(queue)
