"""Checkpoints: weights plus what it takes to rebuild the network, versioned by model name."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from conversions.engine.config import ModelSpec
from conversions.media import file_sha256

name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, dots, dashes and underscores (it becomes part of artifact file names).",
)


def checkpoint_upload_to(instance: "Checkpoint", filename: str) -> str:
    return f"checkpoints/{instance.name}/v{instance.version}/{Path(filename).name}"


class Checkpoint(models.Model):
    """Weights plus what it takes to rebuild the network; versions of one model name are numbered 1, 2, ..."""

    name = models.CharField(max_length=100, validators=[name_validator])
    version = models.PositiveIntegerField()
    file = models.FileField(upload_to=checkpoint_upload_to, max_length=500, blank=True)
    architecture = models.CharField(
        max_length=300,
        blank=True,
        help_text="package.module:factory, the factory name in the uploaded .py file, or a built-in name.",
    )
    architecture_file = models.FileField(upload_to=checkpoint_upload_to, max_length=500, blank=True)
    model_kwargs = models.JSONField(default=dict, blank=True)
    input_shape = models.JSONField(default=list)
    preprocess = models.CharField(max_length=30, default="imagenet")
    preprocess_overrides = models.JSONField(default=dict, blank=True)
    labels = models.FileField(
        upload_to=checkpoint_upload_to,
        max_length=500,
        blank=True,
        help_text="Class names, one per line in output order: maps class folders to outputs for labeled accuracy.",
    )
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    trusted = models.BooleanField(
        default=False,
        help_text="Staff only: allow full unpickling of the checkpoint and running its uploaded .py file.",
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="checkpoint_name_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("conversions:checkpoint", args=[self.pk])

    @classmethod
    def next_version(cls, name: str) -> int:
        latest = cls.objects.filter(name=name).aggregate(v=models.Max("version"))["v"]
        return (latest or 0) + 1

    @property
    def runs_uploaded_code(self) -> bool:
        """An uploaded .py architecture runs code from the upload, like unpickling does."""
        return bool(self.architecture_file)

    @property
    def launchable(self) -> bool:
        return self.trusted or not self.runs_uploaded_code

    def architecture_reference(self) -> str | None:
        if self.architecture_file:
            return f"{self.architecture_file.path}:{self.architecture or 'build'}"
        return self.architecture or None

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            checkpoint=self.file.path if self.file else None,
            model=self.architecture_reference(),
            model_kwargs=dict(self.model_kwargs or {}),
            input_shape=tuple(self.input_shape or (1, 3, 224, 224)),
            trust_checkpoint=self.trusted,
            version=str(self.version) if self.version is not None else "",
        )

    def label_names(self, limit: int | None = None) -> list[str]:
        """The labels file's class names (the first ``limit``); empty without a file or if it went missing."""
        if not self.labels:
            return []
        try:
            with self.labels.open("rb") as fh:
                lines = fh.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        names = [line.strip() for line in lines if line.strip()]
        return names[:limit] if limit is not None else names

    def record_file_digest(self) -> None:
        if self.file:
            self.sha256 = file_sha256(Path(self.file.path))
            self.size_bytes = self.file.size
