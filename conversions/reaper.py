"""Dead runs: an active run whose process is gone, whose heartbeat went stale, or whose job RQ gave up on.

``reap_dead_runs()`` marks each failed with the reason and removes its partial outputs; the pages call it
before showing runs.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from conversions import queue
from conversions.execution import remove_run_outputs
from conversions.models import ConversionRun

logger = logging.getLogger("quantweb.conversions")

QUEUED_GRACE_SECONDS = 30
"""A queued run younger than this may still be on its way into Redis."""


def reap_dead_runs(check_queue: bool = True) -> list[ConversionRun]:
    """Marks failed every active run that can no longer finish, with the reason; returns them.

    Running runs: their process is gone (same host), their heartbeat is stale, or RQ recorded their job as
    failed or stopped. Queued runs: one that never reached its queue (no job id after the grace period: the
    process that launched it died first), and (with ``check_queue``) one whose RQ job vanished or failed
    before it started.
    """
    reaped = []
    running = list(ConversionRun.objects.filter(status=ConversionRun.Status.RUNNING))
    grace = timezone.now() - timedelta(seconds=QUEUED_GRACE_SECONDS)
    stale_queued = ConversionRun.objects.filter(status=ConversionRun.Status.QUEUED, created__lt=grace)
    never_queued = list(stale_queued.filter(job_id=""))
    queued = list(stale_queued.exclude(job_id="")) if check_queue else []
    rq_reasons = queue.job_failure_reasons({r.pk: r.job_id for r in running + queued if r.job_id}) if check_queue else {}
    for run in running + queued + never_queued:
        reason = death_reason(run) or rq_reasons.get(run.pk) or never_queued_reason(run)
        if reason and run.terminate(ConversionRun.Status.FAILED, error=reason):
            logger.warning("run %s marked failed: %s", run.pk, reason)
            remove_run_outputs(run)
            reaped.append(run)
    return reaped


def never_queued_reason(run: ConversionRun) -> str | None:
    """Why a queued run with no job id past the grace period will never start."""
    if run.status != ConversionRun.Status.QUEUED or run.job_id:
        return None
    if run.queue_name:
        return (
            f"It never reached its queue '{run.queue_name}': the process that launched it stopped before handing "
            f"it to Redis (no job id after {QUEUED_GRACE_SECONDS} s). Re-run it."
        )
    return (
        f"Its command-line process stopped before the run started (still queued after {QUEUED_GRACE_SECONDS} s). "
        "Run the command again."
    )


def death_reason(run: ConversionRun, now=None) -> str | None:
    """Why an active run can no longer finish, or None if it may still be alive (no Redis needed)."""
    if run.status != ConversionRun.Status.RUNNING:
        return None
    now = now or timezone.now()
    if run.worker_hostname == socket.gethostname() and run.worker_pid and not pid_alive(run.worker_pid):
        return (
            f"The worker process {run.worker_pid} on {run.worker_hostname} ({run.worker}) died during "
            f"stage '{run.stage}' (killed, out of memory or the machine restarted). Re-run it."
        )
    timeout = timedelta(seconds=settings.QUANTWEB_RUN_HEARTBEAT_TIMEOUT)
    last = run.heartbeat or run.started
    if last and now - last > timeout:
        return (
            f"No heartbeat from worker {run.worker} on {run.worker_hostname} since "
            f"{last:%Y-%m-%d %H:%M:%S} UTC (during stage '{run.stage}'); it was killed or lost. Re-run it."
        )
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return True
