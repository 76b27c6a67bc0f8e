"""Files under MEDIA_ROOT: stored relative to it (so the folder can move), digested once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings

from conversions.engine.errors import hide_folders


def media_relative(path: str | Path) -> str:
    """Paths under MEDIA_ROOT are stored relative to it so the media folder can move; others stay absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path(settings.MEDIA_ROOT).resolve()))
    except ValueError:
        return str(path)


def media_absolute(stored: str) -> Path:
    path = Path(stored)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hide_server_paths(text: str) -> str:
    """``text`` with each absolute path's folders replaced by ``…/`` (the file name stays): pages show
    non-staff users no server layout to aim at."""
    return hide_folders(text)


def shown_to(user, text: str) -> str:
    """``text`` as ``user`` may see it: staff see server paths, everyone else ``hide_server_paths``."""
    return str(text) if getattr(user, "is_staff", False) else hide_server_paths(text)


def data_shown_to(user, data):
    """JSON-like ``data`` (a run's config, say) with ``shown_to`` applied to every string in it."""
    if getattr(user, "is_staff", False):
        return data
    if isinstance(data, str):
        # an embedded image's base64 holds '/' runs that look like folders; it names no server path
        return data if data.startswith("data:") else hide_server_paths(data)
    if isinstance(data, dict):
        return {key: data_shown_to(user, value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [data_shown_to(user, value) for value in data]
    return data
