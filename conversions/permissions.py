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
    """The id of the user who owns ``obj`` (its creator); for a checkpoint, the creator of the model name."""
    from conversions.models import Checkpoint

    if isinstance(obj, Checkpoint):
        first = Checkpoint.objects.filter(name=obj.name).order_by("version").values_list("created_by", flat=True).first()
        return first if first is not None else obj.created_by_id
    return getattr(obj, "created_by_id", None)


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


def may_add_version(user: Any, name: str) -> bool:
    """A new version under an existing model name is for that name's owner or staff; a new name for anyone."""
    from conversions.models import Checkpoint

    latest = Checkpoint.objects.filter(name=name).order_by("-version").first()
    return latest is None or can_change(user, latest)
