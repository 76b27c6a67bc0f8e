"""Registering an uploaded archive as a dataset: one code path, run in the request for a small archive and in
an RQ job (with progress on the row) for one above ``QUANTWEB_ARCHIVE_INLINE_MAX``.

The queued path keeps the upload as a staging file in the dataset's folder under MEDIA_ROOT; whatever the
outcome the staging file goes, and on failure the folder and thumbnails go too, the row saying why in the
same words the form would have used.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import IO, Callable

from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError

from conversions import queue
from conversions.engine.errors import QuantwebError
from conversions.media import media_relative, shown_to
from conversions.models import Dataset
from conversions.uploads import (
    ARCHIVE_SUFFIXES,
    UnsafeArchive,
    check_room,
    dataset_root,
    extract_archive,
    new_dataset_folder,
    save_upload,
)
from conversions.wording import PORTAL_FIELD_NAMES

REGISTRATION_ERRORS = (UnsafeArchive, OSError, QuantwebError)
"""What extraction and registration raise for bad input (``registration_error`` words each)."""

EXTRACTION_SHARE = 0.95
"""Of a queued registration's progress, the part extraction takes (detection and thumbnails the rest)."""


def registration_error(err: BaseException, user) -> tuple[str | None, str]:
    """The form field (None: the whole form) and the message, as ``user`` may see it, for one of
    ``REGISTRATION_ERRORS``."""
    if isinstance(err, UnsafeArchive):
        return "archive", f"Archive rejected: {shown_to(user, str(err))}"
    if isinstance(err, QuantwebError):
        return None, shown_to(user, err.render(PORTAL_FIELD_NAMES))
    # an OSError: the folder became unreadable while it was detected or thumbnailed
    return None, shown_to(user, f"The dataset could not be read ({getattr(err, 'strerror', None) or err}).")


def extract_and_register(dataset: Dataset, archive: IO[bytes], size: int, folder: Path,
                         progress: Callable[[float], None] | None = None) -> Dataset:  # fmt: skip
    """Extracts ``archive`` into ``folder/files`` within its owner's quota and the archive limits, points
    ``dataset`` at the image root and registers it (detect, thumbnails, save ready). Raises one of
    ``REGISTRATION_ERRORS``; ``extract_archive`` leaves no files behind."""
    files = extract_archive(archive, dataset.archive_name, folder / "files", size=size,
                            quota_left=Dataset.upload_quota_left(dataset.created_by), progress=progress)  # fmt: skip
    dataset.path = media_relative(dataset_root(files))
    dataset.complete_registration()
    return dataset


def queues(upload) -> bool:
    """Whether an uploaded archive is large enough to be registered by a job rather than in the request."""
    return upload.size > settings.QUANTWEB_ARCHIVE_INLINE_MAX


def staging_path(folder: Path, archive_name: str) -> Path:
    """Where a queued upload waits (its suffix tells ``extract_archive`` the format; the name is ours)."""
    suffix = next(s for s in ARCHIVE_SUFFIXES if archive_name.lower().endswith(s))
    return folder / f"upload{suffix}"


def queue_upload(upload, *, name: str, dataset_type: str, description: str, user) -> Dataset:
    """Checks there is room (quota, free disk), saves ``upload`` as the staging file of a new folder and
    creates the row, registering; the job is enqueued once the row is committed. Raises ``UnsafeArchive``
    or ``OSError`` with nothing left on disk."""
    folder = new_dataset_folder(name)
    try:
        check_room(folder, upload.size, Dataset.upload_quota_left(user))
        save_upload(upload, staging_path(folder, upload.name))
        with transaction.atomic():
            dataset = Dataset.new(name=name, path=folder, source=Dataset.Source.UPLOAD, dataset_type=dataset_type,
                                  description=description, archive_name=upload.name, user=user,
                                  status=Dataset.Status.REGISTERING)  # fmt: skip
            dataset.save()
            transaction.on_commit(lambda: _enqueue(dataset))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return dataset


def _enqueue(dataset: Dataset) -> None:
    try:
        queue.enqueue_registration(dataset.pk, settings.RQ_QUEUE_NAME)
    except RedisError as err:
        dataset.fail_registration(f"Could not enqueue the registration: {queue.redis_down_message(err)}")


class _RowProgress:
    """Stores a fraction on the row at most every ``interval`` seconds (one UPDATE, not one per chunk)."""

    def __init__(self, dataset: Dataset, interval: float = 0.5) -> None:
        self.dataset, self.interval, self.last = dataset, interval, 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            Dataset.objects.filter(pk=self.dataset.pk).update(progress=round(fraction * EXTRACTION_SHARE, 4))


def register_queued(dataset_id: int) -> str:
    """The job's work: extracts and registers queued dataset ``dataset_id`` from its staging file; returns
    the status it ended in."""
    dataset = Dataset.objects.select_related("created_by").get(pk=dataset_id)
    if dataset.status != Dataset.Status.REGISTERING:
        return dataset.status
    folder = dataset.upload_folder
    staging = staging_path(folder, dataset.archive_name)
    try:
        with open(staging, "rb") as archive:
            extract_and_register(dataset, archive, staging.stat().st_size, folder, _RowProgress(dataset))
    except REGISTRATION_ERRORS as err:
        dataset.fail_registration(registration_error(err, dataset.created_by)[1])
    except BaseException as err:
        dataset.fail_registration(f"Registration stopped ({type(err).__name__}); upload the archive again.")
        raise
    finally:
        staging.unlink(missing_ok=True)
    return dataset.status
