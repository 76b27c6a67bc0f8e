"""Artifacts: the ``.tflite`` files a run produced, immutable once written."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from django.db import models
from django.urls import reverse
from django.utils import timezone

from conversions.engine.variants import BY_NAME, VARIANTS, variant
from conversions.media import media_absolute, media_relative

if TYPE_CHECKING:
    from conversions.models.run import ConversionRun

VARIANT_CHOICES = [(v.name, v.name) for v in VARIANTS]


class ImmutableError(Exception):
    pass


class Artifact(models.Model):
    """One ``.tflite`` a run produced; immutable once written (the file is made read-only too)."""

    run = models.ForeignKey("conversions.ConversionRun", on_delete=models.PROTECT, related_name="artifacts")
    variant = models.CharField(max_length=10, choices=VARIANT_CHOICES)
    filename = models.CharField(max_length=255, db_index=True)
    path = models.CharField(max_length=1000, help_text="Relative to MEDIA_ROOT for portal runs.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "variant"], name="artifact_run_variant")]

    def __str__(self) -> str:
        return self.filename

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ImmutableError(f"artifact {self.filename} is immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError(f"artifact {self.filename} is immutable")

    def get_absolute_url(self) -> str:
        return reverse("conversions:download", args=[self.pk, self.filename])

    @property
    def file_path(self) -> Path:
        return media_absolute(self.path)

    @property
    def variant_label(self) -> str:
        return BY_NAME[self.variant].label if self.variant in BY_NAME else self.variant

    @classmethod
    def record(cls, run: "ConversionRun", name: str, path: Path, sha256: str, size_bytes: int) -> "Artifact":
        stored = media_relative(path)
        if not Path(stored).is_absolute():  # portal artifacts; a CLI user's own output files keep their mode
            path.chmod(0o400)  # read-only, and owner-only like everything under MEDIA_ROOT (quantweb.filemodes)
        return cls.objects.create(
            run=run, variant=variant(name).name, filename=path.name, path=stored, sha256=sha256,
            size_bytes=size_bytes,
        )  # fmt: skip
