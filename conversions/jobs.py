"""RQ entry points: load the run, execute it, let the record say what happened.

The job function holds no conversion logic: ``execution.execute_run`` does the work, the same code the CLI
uses. RQ finds these by the dotted paths in ``queue``.
"""

from __future__ import annotations

import logging

from rq.job import Job

from conversions.execution import (
    RunCancelled,
    RunNotStartable,
    execute_run,
    remove_run_outputs,
)
from conversions.models import ConversionRun, Dataset
from conversions.registration import register_queued

logger = logging.getLogger("quantweb.conversions")


def run_conversion(run_id: int) -> dict:
    """The RQ job: executes run ``run_id`` unless another worker or a cancel got to it first."""
    run = ConversionRun.objects.get(pk=run_id)
    try:
        execute_run(run)
    except (RunNotStartable, RunCancelled) as err:
        logger.info("%s", err)
        return {"run": run_id, "skipped": str(err)}
    return {"run": run_id, "status": ConversionRun.Status.SUCCEEDED}


def on_job_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback (also called for jobs RQ finds abandoned by a dead worker)."""
    run_id = job.args[0] if job.args else None
    if run_id is None:
        return
    if exc_type is not None and exc_type.__name__ == "AbandonedJobError":
        reason = "The worker running this job died (RQ found the job abandoned). Re-run it."
    else:
        reason = f"{getattr(exc_type, '__name__', 'Error')}: {exc_value}"
    run = ConversionRun.objects.filter(pk=run_id).first()
    if run is not None and run.terminate(ConversionRun.Status.FAILED, error=reason):
        remove_run_outputs(run)


def on_job_stopped(job: Job, connection) -> None:
    """RQ stopped callback (in the worker, after it killed the work horse of a cancelled run)."""
    run = ConversionRun.objects.filter(pk=job.args[0]).first() if job.args else None
    if run is not None:
        run.terminate(ConversionRun.Status.CANCELLED, error="Stopped from RQ.")
        run.refresh_from_db(fields=["status"])
        remove_run_outputs(run)


def register_dataset(dataset_id: int) -> dict:
    """The RQ job for an archive too large to register in the request: extract (with progress), detect,
    thumbnails, all by ``registration.register_queued``."""
    return {"dataset": dataset_id, "status": register_queued(dataset_id)}


def on_registration_failure(job: Job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback for a registration whose worker died or timed out: the row says so, no files stay."""
    dataset = Dataset.objects.filter(pk=job.args[0]).first() if job.args else None
    if dataset is not None and dataset.status == Dataset.Status.REGISTERING:
        dataset.fail_registration(
            f"The worker registering this dataset stopped ({getattr(exc_type, '__name__', 'error')}); "
            "upload the archive again."
        )
