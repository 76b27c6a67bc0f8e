"""What a person may do to a run that exists (cancel, re-run), for the pages and the API alike.

The model methods check ``permissions`` (owner or staff; ``PermissionDenied`` otherwise) and move the
record; this module turns what the run's state refuses into ``ActionRefused`` with what to do.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from conversions.models import ConversionRun


class ActionRefused(Exception):
    """The run's state does not allow the action (the API answers 409); ``field`` names the input at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class TooManyQueued(ActionRefused):
    """The user has ``QUANTWEB_MAX_QUEUED_RUNS`` runs not yet finished (the API answers 429)."""


def check_queue_room(user: Any) -> None:
    """Refuses a new run while ``user`` has ``QUANTWEB_MAX_QUEUED_RUNS`` runs queued or running: one person
    cannot fill the workers' queue for everyone."""
    limit = settings.QUANTWEB_MAX_QUEUED_RUNS
    if user is None or not limit:
        return
    waiting = ConversionRun.objects.active().filter(created_by=user).count()
    if waiting >= limit:
        raise TooManyQueued(f"You have {waiting} runs queued or running, the most one person may have "
                            f"(QUANTWEB_MAX_QUEUED_RUNS={limit}); wait for one to finish or cancel one.")  # fmt: skip


def cancel_run(run: ConversionRun, user: Any) -> None:
    """Cancels a queued or running run, recording who; ``ActionRefused`` if it had already ended."""
    if not run.cancel_by(user):
        run.refresh_from_db(fields=["status"])
        raise ActionRefused(f"Run {run.pk} had already ended ({run.status}).")


def rerun(run: ConversionRun, user: Any) -> ConversionRun:
    """A new run with the same checkpoint, dataset and settings, launched by ``user``, recording which run
    it re-ran; ``ActionRefused`` (naming the checkpoint) when the checkpoint cannot run, ``TooManyQueued``
    when ``user`` has too many runs waiting."""
    check_queue_room(user)
    try:
        return run.relaunch(user)
    except ValueError as err:
        raise ActionRefused(str(err), field="checkpoint") from err
