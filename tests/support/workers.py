"""Real RQ worker processes for tests: started on this session's queue and database, killed like the OOM killer would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection


def database_url() -> str:
    """The URL of the database this process uses (in tests: pytest-django's test database)."""
    db = connection.settings_dict
    if "sqlite" in db["ENGINE"]:
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(**extra: str) -> dict[str, str]:
    """Environment for a worker process that sees this process's database, queue and media folder."""
    env = dict(os.environ)
    env.pop("PYTEST_VERSION", None)
    env.update(
        DATABASE_URL=database_url(),
        QUANTWEB_QUEUE=settings.RQ_QUEUE_NAME,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        REDIS_URL=settings.REDIS_URL,
        QUANTWEB_RUN_HEARTBEAT_SECONDS=str(settings.QUANTWEB_RUN_HEARTBEAT_SECONDS),
        **extra,
    )
    return env


def start_worker(log_path: Path, burst: bool = True, name: str | None = None, **env: str) -> subprocess.Popen:
    """Starts ``manage.py rqworker`` on this session's queue, in its own process group (so a test can
    kill it, work horse included, with ``os.killpg``)."""
    cmd = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "rqworker", settings.RQ_QUEUE_NAME]
    cmd += ["--name", name or f"test-worker-{uuid.uuid4().hex[:8]}"]
    if burst:
        cmd.append("--burst")
    log = open(log_path, "ab")
    return subprocess.Popen(
        cmd, cwd=settings.BASE_DIR, env=worker_environment(**env), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def purge_queue(queue) -> None:
    """Removes a test queue's jobs, registries and results from Redis."""
    from rq.job import Job

    registries = [queue.started_job_registry, queue.finished_job_registry, queue.failed_job_registry,
                  queue.canceled_job_registry, queue.deferred_job_registry, queue.scheduled_job_registry]
    job_ids = set(queue.get_job_ids())
    for registry in registries:
        job_ids.update(registry.get_job_ids())
    queue.empty()
    connection = queue.connection
    for job_id in job_ids:
        connection.delete(Job.key_for(job_id), f"{Job.key_for(job_id)}:results")
    connection.delete(*[r.key for r in registries])


def kill_worker(proc: subprocess.Popen) -> list[int]:
    """SIGKILLs a worker and its work horse (RQ puts the horse in a session of its own), as the OOM killer
    or a machine restart would; returns the pids killed."""
    import psutil

    try:
        family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()
    psutil.wait_procs(family, timeout=10)
    return [p.pid for p in family]


class WorkerPool:
    """Worker processes started by one test; ``close()`` kills whatever is still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, burst: bool = True) -> subprocess.Popen:
        proc = start_worker(self.log_path(len(self.procs)), burst=burst)
        self.procs.append(proc)
        return proc

    def log_path(self, index: int) -> Path:
        return self.log_dir / f"worker-{index}.log"

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_worker(proc)


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
