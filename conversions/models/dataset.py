"""Datasets: images for calibration and verification, registered once with what the data engine detected."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from conversions.media import media_absolute, media_relative
from conversions.permissions import require_change
from conversions.models.checkpoint import name_validator


class Dataset(models.Model):
    """Images for calibration and verification: an uploaded archive extracted under MEDIA_ROOT, or a
    server-side folder inside one of ``settings.QUANTWEB_DATASET_ROOTS``."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "uploaded archive"
        SERVER = "server", "server path"

    class Status(models.TextChoices):
        REGISTERING = "registering", "registering"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    source = models.CharField(max_length=10, choices=Source.choices)
    path = models.CharField(max_length=1000, help_text="The image folder (relative paths are under MEDIA_ROOT).")
    archive_name = models.CharField(max_length=255, blank=True)
    dataset_type = models.CharField(max_length=30, default="auto")
    structure = models.JSONField(default=dict, blank=True, help_text="What the data engine detected.")
    layout = models.CharField(max_length=50, blank=True)
    num_images = models.PositiveIntegerField(default=0)
    num_classes = models.PositiveIntegerField(default=0)
    num_skipped = models.PositiveIntegerField(default=0)
    thumbnails = models.JSONField(default=list, blank=True, help_text="Thumbnail files under MEDIA_ROOT.")
    size_bytes = models.BigIntegerField(default=0, help_text="Bytes an uploaded archive extracted to (the quota).")
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.READY,
        help_text="A large archive is extracted and registered by a job: registering, then ready or failed.",
    )  # fmt: skip
    progress = models.FloatField(default=0.0, help_text="Fraction of a queued registration done (0 to 1).")
    error = models.TextField(blank=True, help_text="Why a queued registration failed, for the person who uploaded.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("conversions:dataset", args=[self.pk])

    @property
    def folder(self) -> Path:
        return media_absolute(self.path)

    @classmethod
    def register(
        cls,
        *,
        name: str,
        path: str | Path,
        source: str,
        dataset_type: str = "auto",
        description: str = "",
        archive_name: str = "",
        user=None,
    ) -> "Dataset":
        """The one way a server folder is registered (``new`` then ``complete_registration``): nothing is saved
        when detection fails."""
        dataset = cls.new(name=name, path=path, source=source, dataset_type=dataset_type,
                          description=description, archive_name=archive_name, user=user)  # fmt: skip
        dataset.complete_registration()
        return dataset

    @classmethod
    def new(cls, *, name: str, path: str | Path, source: str, dataset_type: str = "auto", description: str = "",
            archive_name: str = "", user=None, status: str = Status.READY) -> "Dataset":  # fmt: skip
        """An unsaved row for a dataset about to be registered (``complete_registration`` saves it)."""
        return cls(name=name, source=source, path=media_relative(path), dataset_type=dataset_type,
                   description=description, archive_name=archive_name, created_by=user, status=status)  # fmt: skip

    def complete_registration(self) -> None:
        """Detects what the folder holds (the data engine's ``DatasetError`` if nothing usable), then saves the
        row, ready, with its thumbnails; on any error no thumbnail is left and the row is not saved ready."""
        if self.source == self.Source.UPLOAD:
            self.size_bytes = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        self.detect_structure()
        try:
            self.refresh_thumbnails()
            self.status, self.progress, self.error = self.Status.READY, 1.0, ""
            with transaction.atomic():
                self.save()
        except BaseException:
            shutil.rmtree(self.thumbnail_dir, ignore_errors=True)
            raise

    def fail_registration(self, error: str) -> None:
        """A queued registration failed: the row says why; its files and thumbnails are removed."""
        type(self).objects.filter(pk=self.pk).update(status=self.Status.FAILED, error=error)
        self.status, self.error = self.Status.FAILED, error
        shutil.rmtree(self.thumbnail_dir, ignore_errors=True)
        shutil.rmtree(self.upload_folder, ignore_errors=True)

    @property
    def upload_folder(self) -> Path:
        """``MEDIA_ROOT/datasets/<name>-xyz``, the folder an upload's staging file and files live in."""
        folder = self.folder.resolve()
        media = Path(settings.MEDIA_ROOT).resolve() / "datasets"
        while folder.parent != media and folder != folder.parent:
            folder = folder.parent
        if folder == folder.parent:
            raise ValueError(f"{self} is not under {media}")
        return folder

    @classmethod
    def upload_quota_left(cls, user) -> int:
        """Bytes ``user`` may still upload (``QUANTWEB_USER_UPLOAD_QUOTA`` less their uploaded datasets)."""
        used = cls.objects.filter(created_by=user, source=cls.Source.UPLOAD).aggregate(n=models.Sum("size_bytes"))
        return settings.QUANTWEB_USER_UPLOAD_QUOTA - (used["n"] or 0)

    def detect_again(self, user) -> None:
        """Detects the structure again (a server folder may have changed since it was registered), for the
        dataset's owner or staff (``PermissionDenied`` for anyone else)."""
        require_change(user, self, "detect again")
        if self.status != self.Status.READY:
            raise ValueError(f"{self} is {self.get_status_display()}; only a ready dataset can be detected again.")
        self.detect_structure()
        self.refresh_thumbnails()
        self.save()

    def delete_by(self, user) -> None:
        """Deletes the dataset, for its owner or staff (``PermissionDenied`` for anyone else); an uploaded
        dataset's files and every thumbnail go with it. A dataset that runs used stays (``ValueError``): the
        runs are the audit trail."""
        require_change(user, self, "delete")
        if self.runs.exists():
            raise ValueError(f"{self} was used by {self.runs.count()} run(s), which keep it for the record.")
        if self.status == self.Status.REGISTERING:
            raise ValueError(f"{self} is still being registered; delete it once it is ready or failed.")
        try:
            upload_folder = self.upload_folder if self.source == self.Source.UPLOAD else None
        except ValueError:
            upload_folder = None
        self.delete()
        shutil.rmtree(self.thumbnail_dir, ignore_errors=True)
        if upload_folder is not None:
            shutil.rmtree(upload_folder, ignore_errors=True)

    def detect_structure(self) -> None:
        """Asks the data engine what this folder holds (raises its DatasetError, a QuantwebError)."""
        from conversions.engine.data.layouts import detect_dataset

        self.apply_structure(detect_dataset(self.folder, self.dataset_type).to_dict())

    def apply_structure(self, structure: dict[str, Any]) -> None:
        """Stores the detected structure and the few figures the lists show."""
        self.structure = structure
        self.layout = str(structure.get("layout") or "")
        self.num_images = int(structure.get("num_images") or 0)
        self.num_classes = len(structure.get("classes") or [])
        self.num_skipped = (
            int(structure.get("ignored_files") or 0)
            + len(structure.get("unreadable_dirs") or [])
            + len(structure.get("thumbnails_skipped") or [])
        )

    @property
    def thumbnail_dir(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "thumbnails" / f"dataset-{self.name}"

    def refresh_thumbnails(self) -> None:
        """Thumbnails opened the way the engine opens images: unreadable ones and decompression bombs are
        skipped and counted (``structure["thumbnails_skipped"]``, in ``num_skipped``)."""
        from conversions.uploads import make_thumbnails

        thumbs, skipped = make_thumbnails(self.folder, self.thumbnail_dir, settings.QUANTWEB_THUMBNAILS)
        self.thumbnails = [{"file": media_relative(t["file"]), "source": t["source"]} for t in thumbs]
        self.structure = {**self.structure, "thumbnails_skipped": skipped}
        self.apply_structure(self.structure)

    @property
    def class_rows(self) -> list[tuple[str, int]]:
        counts = self.structure.get("class_counts") or {}
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
