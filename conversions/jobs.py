"""RQ entry points: load the run, execute it, let the record say what happened.

The job function holds no conversion logic: ``runs.execute_run`` does the work, the same code the CLI uses.
"""

from __future__ import annotations

import logging
import uuid

import django_rq
from django.conf import settings
from redis.exceptions import RedisError
from rq import Callback
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from conversions.models import ConversionRun

logger = logging.getLogger("quantweb.conversions")


def job_id_for(run: ConversionRun) -> str:
    """Unique across databases sharing one Redis (dev, tests, another checkout): the pk alone is not."""
    return f"quantweb-run-{run.pk}-{uuid.uuid4().hex[:8]}"


def enqueue_run(run: ConversionRun) -> None:
    """Puts the run on its RQ queue (called from ``transaction.on_commit``). If Redis is unreachable the run
    is marked failed with how to start Redis, rather than staying queued forever."""
    queue = django_rq.get_queue(run.queue_name or settings.RQ_QUEUE_NAME)
    job_id = job_id_for(run)
    ConversionRun.objects.filter(pk=run.pk).update(job_id=job_id, queue_name=queue.name)
    run.job_id, run.queue_name = job_id, queue.name
    try:
        queue.enqueue(
            run_conversion,
            run.pk,
            job_id=job_id,
            job_timeout=settings.QUANTWEB_RUN_TIMEOUT,
            result_ttl=7 * 24 * 3600,
            failure_ttl=30 * 24 * 3600,
            on_failure=Callback(on_job_failure),
            on_stopped=Callback(on_job_stopped),
            description=f"conversion run {run.pk} ({run.model_name} {run.variants})",
        )
    except RedisError as err:
        run.terminate(ConversionRun.Status.FAILED, error=f"Could not enqueue: {redis_down_message(err)}")


def redis_down_message(err: Exception) -> str:
    return (
        f"Redis at {settings.REDIS_URL} is unreachable ({err}). Start it with: redis-server --daemonize yes "
        "--bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no --dir /var/lib/redis "
        "--logfile /var/log/redis/ci.log"
    )


def run_conversion(run_id: int) -> dict:
    """The RQ job: executes run ``run_id`` unless another worker or a cancel got to it first."""
    from conversions.runs import RunCancelled, RunNotStartable, execute_run

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
        from conversions.runs import remove_run_outputs

        remove_run_outputs(run)


def on_job_stopped(job: Job, connection) -> None:
    """RQ stopped callback (in the worker, after it killed the work horse of a cancelled run)."""
    from conversions.runs import remove_run_outputs

    run = ConversionRun.objects.filter(pk=job.args[0]).first() if job.args else None
    if run is not None:
        run.terminate(ConversionRun.Status.CANCELLED, error="Stopped from RQ.")
        run.refresh_from_db(fields=["status"])
        remove_run_outputs(run)


def stop_job(job_id: str, running: bool) -> None:
    """Removes a queued job from its queue, or tells its worker to kill the work horse of a running one."""
    connection = django_rq.get_connection(settings.RQ_QUEUE_NAME)
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return
    try:
        if running or job.get_status() == JobStatus.STARTED:
            send_stop_job_command(connection, job_id)
        else:
            job.cancel()
    except InvalidJobOperation as err:  # it ended meanwhile; the run row already says cancelled
        logger.info("job %s: %s", job_id, err)


def job_failure_reasons(runs: list[ConversionRun]) -> dict[int, str]:
    """For each run whose RQ job vanished, failed or was stopped, the reason RQ gives."""
    if not runs:
        return {}
    connection = django_rq.get_connection(settings.RQ_QUEUE_NAME)
    jobs = Job.fetch_many([r.job_id for r in runs], connection=connection)
    reasons = {}
    for run, job in zip(runs, jobs):
        if job is None:
            reasons[run.pk] = (
                f"Its job {run.job_id} is no longer in Redis (Redis was restarted or flushed). Re-run it."
            )
            continue
        status = job.get_status(refresh=False)
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            result = job.latest_result()
            detail = (result.exc_string or "").strip().splitlines()[-1:] if result else []
            reasons[run.pk] = f"RQ marked its job {status}: {detail[0] if detail else 'no detail'}"
    return reasons
