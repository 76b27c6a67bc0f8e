"""What a person may do to a run that exists (cancel, re-run), for the pages and the API alike.

Each action checks ``permissions`` first (owner or staff; ``PermissionDenied`` otherwise), then what the
run's state allows (``ActionRefused`` with what to do), then calls the model method that moves the record.
"""

from __future__ import annotations

from typing import Any

from conversions.models import ConversionRun
from conversions.permissions import require_change


class ActionRefused(Exception):
    """The run's state does not allow the action (the API answers 409); ``field`` names the input at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def cancel_run(run: ConversionRun, user: Any) -> None:
    """Cancels a queued or running run; ``ActionRefused`` if it had already ended."""
    require_change(user, run, "cancel")
    if not run.cancel(reason=f"Cancelled by {user.get_username()}."):
        run.refresh_from_db(fields=["status"])
        raise ActionRefused(f"Run {run.pk} had already ended ({run.status}).")


def rerun(run: ConversionRun, user: Any) -> ConversionRun:
    """A new run with the same checkpoint, dataset and settings, launched by ``user``."""
    require_change(user, run, "re-run")
    if run.checkpoint is None:
        raise ActionRefused("CLI runs without a registered checkpoint cannot be re-run here.", field="checkpoint")
    if not run.checkpoint.launchable:
        raise ActionRefused(
            f"{run.checkpoint} must be marked trusted by staff before it can run.", field="checkpoint"
        )
    return run.relaunch(user=user)
