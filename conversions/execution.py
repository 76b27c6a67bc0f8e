"""Executing a recorded run: the one code path the RQ job and the ``export_models`` CLI share.

``execute_run(run)`` claims the run, calls the engine with a ``Progress`` that writes onto the row (and a
heartbeat that says the process is alive), stores the report and artifacts, and on any failure marks the run
failed and removes what it wrote.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from conversions.engine.config import ExportConfig
from conversions.engine.errors import CheckpointError, QuantwebError
from conversions.engine.progress import Progress
from conversions.engine.report.results import ExportReport
from conversions.media import file_sha256
from conversions.models import ConversionRun
from conversions.wording import PORTAL_FIELD_NAMES

logger = logging.getLogger("quantweb.conversions")


class RunNotStartable(Exception):
    """The run is not queued any more (another worker claimed it, or it was cancelled or reaped)."""


class RunCancelled(Exception):
    """The run was cancelled while it was executing; its outputs were discarded."""


def execute_run(run: ConversionRun, progress: Progress | None = None) -> ExportReport:
    """Runs a queued run to its end in this process and returns the engine's report.

    Raises ``RunNotStartable`` if the run is no longer queued, the engine's error (after marking the run
    failed) if the conversion fails, and ``RunCancelled`` if the run was cancelled meanwhile.
    """
    from conversions.engine.pipeline import (
        run_export,  #torch and TensorFlow load only where runs execute
    )

    if not run.start(worker=_worker_name(), hostname=socket.gethostname(), pid=os.getpid()):
        run.refresh_from_db(fields=["status"])
        raise RunNotStartable(f"run {run.pk} is {run.status}, not queued; it was not run again")

    config = run.export_config()
    planned = planned_outputs(config)
    preexisting = {p for p in planned if p.exists()}
    row_progress = RunProgress(run, forward=progress)
    row_progress.log(f"run {run.pk} started on {run.worker} (pid {os.getpid()})")
    try:
        config = verified_config(run, config)
        with Heartbeat(run):
            report = run_export(config, row_progress)
        row_progress.flush()
        if not run.finish(report):
            raise RunCancelled(f"run {run.pk} was cancelled; its outputs were discarded")
    except BaseException as exc:
        row_progress.flush(check_cancel=False)
        removed = _remove_new_files(planned, preexisting)
        if removed:
            logger.info("run %s: removed %d output(s) of the failed run", run.pk, len(removed))
        run.terminate(ConversionRun.Status.FAILED, error=failure_message(exc))
        run.refresh_from_db(fields=["status"])
        remove_run_outputs(run)
        raise
    return report


def verified_config(run: ConversionRun, config: ExportConfig) -> ExportConfig:
    """``config`` with trust decided now, from the record, for the bytes on disk: a portal run's checkpoint
    file must still have the sha256 it was uploaded with, and trust holds only while it matches what a staff
    member trusted. The sha256 of the bytes loaded is recorded on the run (CLI runs too)."""
    path = Path(config.model.checkpoint) if config.model.checkpoint else None
    digest = file_sha256(path) if path is not None and path.is_file() else ""
    ConversionRun.objects.filter(pk=run.pk).update(checkpoint_sha256=digest)
    run.checkpoint_sha256 = digest
    checkpoint = run.checkpoint
    if checkpoint is None:
        return config
    if checkpoint.sha256 and digest and digest != checkpoint.sha256:
        raise CheckpointError(
            f"{checkpoint}: the checkpoint file on the server changed since it was uploaded (sha256 {digest[:12]}, "
            f"recorded {checkpoint.sha256[:12]}); upload it again as a new version."
        )
    model = dataclasses.replace(config.model, trust_checkpoint=checkpoint.trust_is_current)
    return dataclasses.replace(config, model=model)


def failure_message(exc: BaseException) -> str:
    if isinstance(exc, QuantwebError):
        return exc.render(PORTAL_FIELD_NAMES)
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted (Ctrl-C, or cancelled from the portal)."
    return f"{type(exc).__name__}: {exc}"


def planned_outputs(config: ExportConfig) -> list[Path]:
    """The files the engine will write for ``config``: each ``.tflite`` and the report JSON beside them."""
    from conversions.engine.report.outputs import plan_outputs

    plan = plan_outputs(config, config.model.name)
    return [*plan.variants.values(), plan.report] if plan.variants else []


def _remove_new_files(planned: list[Path], preexisting: set[Path]) -> list[Path]:
    removed = []
    for path in planned:
        if path not in preexisting and path.exists():
            path.unlink()
            removed.append(path)
        for partial in path.parent.glob(f".{path.name}.*.partial") if path.parent.is_dir() else ():
            partial.unlink(missing_ok=True)
    return removed


def remove_run_outputs(run: ConversionRun) -> bool:
    """Deletes the folder of a portal run that did not succeed (never a CLI user's files)."""
    if run.source != ConversionRun.Source.PORTAL or run.status == ConversionRun.Status.SUCCEEDED:
        return False
    folder = run.portal_output_dir()
    if not folder.is_dir():
        return False
    shutil.rmtree(folder)
    return True


def _worker_name() -> str:
    from rq import get_current_job

    job = get_current_job()
    if job is not None and job.worker_name:
        return job.worker_name
    return f"cli {_os_user()}@{socket.gethostname()}"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class RunProgress:
    """A ``Progress`` that writes stage, fraction and log lines onto the run row (at most one write per
    ``interval`` seconds, and at each stage change) and forwards every call to ``forward``.

    When a flush finds the run cancelled it raises ``RunCancelled`` so a CLI run stops at the next
    progress call (an RQ run is stopped by killing its work horse).
    """

    def __init__(self, run: ConversionRun, forward: Progress | None = None, interval: float = 1.0) -> None:
        self.run = run
        self.forward = forward
        self.interval = interval
        self._stage: str | None = None
        self._fraction: float | None = None
        self._lines: list[str] = []
        self._stages: list[list] = list(run.stages or [])
        self._stages_changed = False
        self._started = time.monotonic()
        self._last_write = 0.0

    def stage(self, name: str) -> None:
        if self.forward:
            self.forward.stage(name)
        self._stage = name
        self._fraction = 0.0
        self._stages.append([name, round(time.monotonic() - self._started, 2)])
        self._stages_changed = True
        self._lines.append(f"[{time.strftime('%H:%M:%S')}] stage: {name}")
        self.flush()

    def update(self, fraction: float, detail: str = "") -> None:
        if self.forward:
            self.forward.update(fraction, detail)
        self._fraction = fraction
        self._maybe_flush()

    def log(self, message: str) -> None:
        if self.forward:
            self.forward.log(message)
        self._lines.extend(str(message).splitlines() or [""])
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self, check_cancel: bool = True) -> None:
        status = self.run.write_progress(
            stage=self._stage,
            fraction=self._fraction,
            log_lines=self._lines,
            stages=self._stages if self._stages_changed else None,
        )
        self._lines = []
        self._stages_changed = False
        self._last_write = time.monotonic()
        if check_cancel and status == ConversionRun.Status.CANCELLED:
            raise RunCancelled(f"run {self.run.pk} was cancelled")


class Heartbeat:
    """A daemon thread that stamps ``run.heartbeat`` every few seconds while the engine works, so a run
    whose process died is recognised by its stale heartbeat on any host."""

    def __init__(self, run: ConversionRun, every: float | None = None) -> None:
        self.run_pk = run.pk
        self.every = every or settings.QUANTWEB_RUN_HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run.pk}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        """Beats until stopped. A database error (SQLite's "database is locked", a PostgreSQL restart) skips
        one beat and drops the connection; the thread never dies of it, so a live run is not reaped."""
        try:
            while not self._stop.wait(self.every):
                try:
                    close_old_connections()
                    ConversionRun.objects.filter(pk=self.run_pk, status=ConversionRun.Status.RUNNING).update(
                        heartbeat=timezone.now()
                    )
                except DatabaseError as err:
                    logger.warning("run %s: heartbeat skipped (%s); retrying in %.0f s", self.run_pk, err, self.every)
                    connection.close()
        finally:
            connection.close()
