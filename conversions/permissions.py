"""Who may do what, for the pages and the API alike.

A team portal: everyone signed in sees every dataset, checkpoint, run and artifact. Changing a thing
(cancel, re-run, detect again, add a version under a model name, delete) is for its owner (who created it)
and for staff. Code from uploads runs only after a staff member trusts it (``Checkpoint.launchable``).
The record's methods (``ConversionRun.cancel_by``, ``relaunch``, ``Dataset.detect_again``,
``Checkpoint.trust``) and the forms call these, so the pages and the API refuse alike.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied


def owner_of(obj: Any) -> int | None:
    """The id of the user who owns ``obj``: its ``owner_id`` where the record defines one (a checkpoint: the
    creator of the model name's first version), else its creator. Imports no model, so every model may use it."""
    owner = getattr(obj, "owner_id", None)
    return owner if owner is not None else getattr(obj, "created_by_id", None)


def can_change(user: Any, obj: Any) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return bool(user.is_staff) or (owner_of(obj) is not None and owner_of(obj) == user.pk)


def require_change(user: Any, obj: Any, action: str) -> None:
    """Raises ``PermissionDenied`` with what to do when ``user`` may not ``action`` ``obj``."""
    if not can_change(user, obj):
        raise PermissionDenied(f"Only the owner of {obj} or a staff member may {action} it; ask them to.")


def require_staff(user: Any, action: str) -> None:
    if user is None or not getattr(user, "is_staff", False):
        raise PermissionDenied(f"Only a staff member may {action}.")

