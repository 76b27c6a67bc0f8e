"""The RQ queue, by dotted path: enqueue a run's job, stop it, ask what became of it.

Nothing here imports the record or the job code, so the record (``models``) can enqueue and stop its own
jobs without an import cycle; RQ resolves ``conversions.jobs.*`` in the worker.
"""

from __future__ import annotations

import logging
import uuid

import django_rq
from django.conf import settings
from rq import Callback
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

logger = logging.getLogger("quantweb.conversions")

RUN_JOB = "conversions.jobs.run_conversion"
ON_FAILURE = "conversions.jobs.on_job_failure"
ON_STOPPED = "conversions.jobs.on_job_stopped"
REGISTER_JOB = "conversions.jobs.register_dataset"
ON_REGISTER_FAILURE = "conversions.jobs.on_registration_failure"


def new_job_id(run_id: int) -> str:
    """Unique across databases sharing one Redis (dev, tests, another checkout): the pk alone is not."""
    return f"quantweb-run-{run_id}-{uuid.uuid4().hex[:8]}"


def enqueue_run(run_id: int, job_id: str, queue_name: str, description: str) -> None:
    """Puts run ``run_id`` on ``queue_name``; raises ``redis.exceptions.RedisError`` when Redis is down."""
    queue = django_rq.get_queue(queue_name)
    queue.enqueue(
        RUN_JOB,
        run_id,
        job_id=job_id,
        job_timeout=settings.QUANTWEB_RUN_TIMEOUT,
        result_ttl=7 * 24 * 3600,
        failure_ttl=30 * 24 * 3600,
        on_failure=Callback(ON_FAILURE),
        on_stopped=Callback(ON_STOPPED),
        description=description,
    )


def enqueue_registration(dataset_id: int, queue_name: str) -> None:
    """Puts the extraction and registration of queued dataset ``dataset_id`` on ``queue_name`` (the runs'
    queue); raises ``redis.exceptions.RedisError`` when Redis is down."""
    django_rq.get_queue(queue_name).enqueue(
        REGISTER_JOB,
        dataset_id,
        job_id=f"quantweb-dataset-{dataset_id}-{uuid.uuid4().hex[:8]}",
        job_timeout=settings.QUANTWEB_RUN_TIMEOUT,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        on_failure=Callback(ON_REGISTER_FAILURE),
        description=f"register dataset {dataset_id}",
    )


def redis_down_message(err: Exception) -> str:
    return (
        f"Redis at {settings.REDIS_URL} is unreachable ({err}). Start it with: redis-server --daemonize yes "
        "--bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no --dir /var/lib/redis "
        "--logfile /var/log/redis/ci.log"
    )


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


def job_failure_reasons(job_ids: dict[int, str]) -> dict[int, str]:
    """For each run (id -> its job id) whose RQ job vanished, failed or was stopped, the reason RQ gives."""
    if not job_ids:
        return {}
    connection = django_rq.get_connection(settings.RQ_QUEUE_NAME)
    jobs = Job.fetch_many(list(job_ids.values()), connection=connection)
    reasons = {}
    for (run_id, job_id), job in zip(job_ids.items(), jobs):
        if job is None:
            reasons[run_id] = f"Its job {job_id} is no longer in Redis (Redis was restarted or flushed). Re-run it."
            continue
        status = job.get_status(refresh=False)
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            result = job.latest_result()
            detail = (result.exc_string or "").strip().splitlines()[-1:] if result else []
            reasons[run_id] = f"RQ marked its job {status}: {detail[0] if detail else 'no detail'}"
    return reasons
