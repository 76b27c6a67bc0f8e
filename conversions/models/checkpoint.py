"""Checkpoints: weights plus what it takes to rebuild the network, versioned by model name.

A version's files and architecture never change once saved (a change is a new version), so a staff
member's trust is given to one version, for the digest of exactly those bytes and that architecture
(``trust_digest``), and recorded with who and when. Trust that no longer matches the digest is no trust.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from conversions.engine.config import ModelSpec
from conversions.media import file_sha256
from conversions.models.artifact import ImmutableError
from conversions.permissions import can_change, require_staff

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
        help_text="Staff only: allow what runs code: full unpickling, a .pt2 with pickled payloads, an "
        "architecture that is not a built-in name (a module, a server file or the uploaded .py).",
    )
    trusted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trusted_at = models.DateTimeField(null=True, blank=True)
    trusted_digest = models.CharField(
        max_length=64, blank=True, help_text="The trust_digest (files + architecture) the staff member trusted."
    )
    code_reasons = models.JSONField(
        default=list, blank=True, help_text="Why loading this version runs code (recorded at upload)."
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

    @property
    def owner_id(self) -> int | None:
        """Who owns the model name: the creator of its first version."""
        first = type(self).objects.filter(name=self.name).order_by("version").values_list("created_by", flat=True)
        owner = first.first()
        return owner if owner is not None else self.created_by_id

    @classmethod
    def may_add_version(cls, user, name: str) -> bool:
        """A new version under an existing model name is for its owner or staff; a new name is for anyone."""
        latest = cls.objects.filter(name=name).order_by("-version").first()
        return latest is None or can_change(user, latest)

    @classmethod
    def next_version(cls, name: str) -> int:
        latest = cls.objects.filter(name=name).aggregate(v=models.Max("version"))["v"]
        return (latest or 0) + 1

    IMMUTABLE_FIELDS = ("name", "version", "file", "architecture", "architecture_file", "model_kwargs", "labels")

    def save(self, *args, **kwargs) -> None:
        """Refuses to change what a version is made of once set (upload a new version instead)."""
        if self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values(*self.IMMUTABLE_FIELDS).first() or {}
            changed = [
                f for f in self.IMMUTABLE_FIELDS
                if stored.get(f) not in (None, "", {}) and stored.get(f) != _stored_value(getattr(self, f))
            ]  # fmt: skip
            if changed:
                raise ImmutableError(
                    f"{self}: {', '.join(changed)} cannot change once saved; upload a new version instead."
                )
        super().save(*args, **kwargs)

    @property
    def runs_code(self) -> bool:
        """Loading this version runs code from outside quantweb (an uploaded .py, a module or server file
        named as the architecture, a .pt2 with pickled payloads), so it needs a staff member's trust."""
        return bool(self.architecture_file or self.code_reasons)

    @property
    def trust_is_current(self) -> bool:
        return self.trusted and bool(self.trusted_digest) and self.trusted_digest == self.trust_digest()

    @property
    def launchable(self) -> bool:
        return self.trust_is_current or not self.runs_code

    def trust_digest(self) -> str:
        """sha256 over what trust is given to: the checkpoint's bytes, its architecture and architecture file."""
        arch_sha = file_sha256(Path(self.architecture_file.path)) if self.architecture_file else ""
        parts = [self.sha256, self.architecture, arch_sha, json.dumps(self.model_kwargs or {}, sort_keys=True)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def trust(self, user) -> None:
        """Records ``user`` (staff) trusting this version's current files; refuses anyone else."""
        require_staff(user, f"trust {self}")
        self.trusted, self.trusted_by, self.trusted_at = True, user, timezone.now()
        self.trusted_digest = self.trust_digest()
        super().save(update_fields=["trusted", "trusted_by", "trusted_at", "trusted_digest"])

    def distrust(self, user) -> None:
        require_staff(user, f"withdraw trust from {self}")
        self.trusted, self.trusted_by, self.trusted_at, self.trusted_digest = False, user, timezone.now(), ""
        super().save(update_fields=["trusted", "trusted_by", "trusted_at", "trusted_digest"])

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
            trust_checkpoint=self.trust_is_current,
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
        """The file's sha256 and size, and whether loading this version runs code (asked of the engine)."""
        from conversions.engine.model.loading import code_to_trust

        if self.file:
            self.sha256 = file_sha256(Path(self.file.path))
            self.size_bytes = self.file.size
        spec = ModelSpec(checkpoint=self.file.path if self.file else None, model=self.architecture or None)
        self.code_reasons = code_to_trust(spec)


def _stored_value(value):
    """A field's value as the database holds it (a FieldFile by its name)."""
    return getattr(value, "name", value)
