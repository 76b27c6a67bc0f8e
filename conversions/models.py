"""The record: datasets, checkpoints, conversion runs and the artifacts they produce.

A ``ConversionRun`` owns its lifecycle (NetBox's Job pattern): ``launch()`` creates it and enqueues the RQ
job on commit, ``start()`` claims it for one process, ``finish()`` / ``terminate()`` end it. Every status
change is a conditional UPDATE on the current status, so two workers, a cancel and the dead-run reaper can
race without a run being done twice or a terminal state being overwritten.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models import F, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Concat
from django.urls import reverse
from django.utils import timezone

from conversions.engine.config import (
    CALIBRATED_VARIANTS,
    DEFAULT_CALIBRATION,
    VARIANTS,
    DataSpec,
    ExportConfig,
    ModelSpec,
    parse_variants,
)
from conversions.engine.report.outputs import variant_label

if TYPE_CHECKING:
    from conversions.engine.report.results import ExportReport

logger = logging.getLogger("quantweb.conversions")

name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, dots, dashes and underscores (it becomes part of artifact file names).",
)

VARIANT_CHOICES = [(v, variant_label(v)) for v in VARIANTS]


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


class Dataset(models.Model):
    """Images for calibration and verification: an uploaded archive extracted under MEDIA_ROOT, or a
    server-side folder inside one of ``settings.QUANTWEB_DATASET_ROOTS``."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "uploaded archive"
        SERVER = "server", "server path"

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
    description = models.TextField(blank=True)
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
        self.num_skipped = int(structure.get("ignored_files") or 0) + len(structure.get("unreadable_dirs") or [])

    def refresh_thumbnails(self) -> None:
        from conversions.uploads import make_thumbnails

        out_dir = Path(settings.MEDIA_ROOT) / "thumbnails" / f"dataset-{self.pk}"
        thumbs = make_thumbnails(self.folder, out_dir, settings.QUANTWEB_THUMBNAILS)
        self.thumbnails = [{"file": media_relative(t["file"]), "source": t["source"]} for t in thumbs]

    @property
    def class_rows(self) -> list[tuple[str, int]]:
        counts = self.structure.get("class_counts") or {}
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


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


class RunQuerySet(models.QuerySet):
    def for_list(self) -> "RunQuerySet":
        """What the history page reads: plain columns only, never the report, log or config JSON."""
        return self.select_related("created_by").only(*ConversionRun.LIST_FIELDS, "created_by__username")

    def for_compare(self) -> "RunQuerySet":
        """What the compare page reads: the settings columns plus, from the report, only its variants and
        PyTorch's accuracy (not the disagreement thumbnails); never the log or config."""
        return self.only(*ConversionRun.COMPARE_FIELDS).annotate(
            report_variants=KeyTransform("variants", "report"),
            pytorch_accuracy=KeyTransform("accuracy", KeyTransform("pytorch", "report")),
        )

    def active(self) -> "RunQuerySet":
        return self.filter(status__in=ConversionRun.ACTIVE)


@dataclass(frozen=True)
class RunSettings:
    """What the new-run form asks for, parsed once; ``ConversionRun.build_portal_config`` makes it the engine's
    ``ExportConfig`` and a re-run reads it back from that config."""

    variants: tuple[str, ...] = ("int8",)
    num_calib_samples: int = 100
    num_eval_samples: int = 100
    preprocess: str = "imagenet"
    seed: int = 0
    calibration_method: str = DEFAULT_CALIBRATION
    max_drop: float | None = None

    @classmethod
    def from_config(cls, config: ExportConfig) -> "RunSettings":
        return cls(
            variants=config.variants,
            num_calib_samples=config.data.num_calib_samples,
            num_eval_samples=config.data.num_eval_samples,
            preprocess=config.data.preprocess,
            seed=config.data.seed,
            calibration_method=config.calibration_method,
            max_drop=config.max_drop,
        )


class ConversionRun(models.Model):
    """One conversion: what was asked, who asked, where it ran, what happened and what it produced."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Source(models.TextChoices):
        PORTAL = "portal"
        CLI = "cli"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    variants = models.CharField(max_length=60, help_text="Comma-separated, e.g. none,int8.")
    num_calib_samples = models.PositiveIntegerField(default=100)
    preprocess = models.CharField(max_length=30, default="imagenet")
    seed = models.IntegerField(default=0)
    config = models.JSONField(default=dict, help_text="The full ExportConfig the engine ran.")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.FloatField(default=0.0, help_text="Fraction of the current stage done.")
    stages = models.JSONField(default=list, blank=True, help_text="[[stage, seconds since start], ...]")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)

    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    report = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversion_runs"
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PORTAL)
    worker = models.CharField(max_length=200, blank=True, help_text="RQ worker name, or cli@host.")
    worker_hostname = models.CharField(max_length=200, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    job_id = models.CharField(max_length=100, blank=True)
    queue_name = models.CharField(max_length=100, blank=True)

    # Denormalised at launch / finish so the history page never joins or parses JSON.
    model_name = models.CharField(max_length=100)
    model_version = models.PositiveIntegerField(null=True, blank=True)
    dataset_name = models.CharField(max_length=200, blank=True)
    primary_variant = models.CharField(max_length=10, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True, help_text="Size of the primary variant.")
    size_ratio = models.FloatField(
        null=True, blank=True, help_text="Primary variant size / float32 size (from the report)."
    )
    top1_agreement = models.FloatField(null=True, blank=True)
    sqnr_db = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    LIST_FIELDS = (
        "id", "status", "stage", "progress", "model_name", "model_version", "dataset_name", "variants",
        "primary_variant", "size_bytes", "size_ratio", "top1_agreement", "sqnr_db", "latency_ms", "duration_s",
        "created", "started", "finished", "source", "created_by",
    )  # fmt: skip

    COMPARE_FIELDS = (
        "id", "status", "model_name", "model_version", "checkpoint", "dataset", "dataset_name", "variants",
        "num_calib_samples", "seed", "preprocess", "created", "duration_s", "error",
    )  # fmt: skip

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["-created", "-id"], name="run_created"),
            models.Index(fields=["status", "-created"], name="run_status_created"),
            models.Index(fields=["model_name", "-created"], name="run_model_created"),
            models.Index(fields=["dataset", "-created"], name="run_dataset_created"),
            models.Index(fields=["created_by", "-created"], name="run_user_created"),
            models.Index(fields=["primary_variant", "-created"], name="run_variant_created"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.model_name}, {self.variants}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("conversions:run", args=[self.pk])

    # ---- what was asked ---------------------------------------------------------------------------------

    @property
    def variant_list(self) -> list[str]:
        return [v for v in self.variants.split(",") if v]

    @property
    def variant_labels(self) -> list[str]:
        return [variant_label(v) for v in self.variant_list]

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def stage_timeline(self) -> list[tuple[str, float]]:
        """``[(stage, seconds spent)]``; the current stage of an active run counts up to now."""
        starts = [(str(name), float(at)) for name, at in (self.stages or [])]
        if self.duration_s is not None:
            end = self.duration_s
        elif self.started:
            end = (timezone.now() - self.started).total_seconds()
        else:
            end = starts[-1][1] if starts else 0.0
        ends = [at for _, at in starts[1:]] + [max(end, starts[-1][1] if starts else 0.0)]
        return [(name, round(stop - at, 1)) for (name, at), stop in zip(starts, ends)]

    @property
    def needs_calibration(self) -> bool:
        return any(v in CALIBRATED_VARIANTS for v in self.variant_list)

    def export_config(self) -> ExportConfig:
        return ExportConfig.from_dict(self.config)

    def artifact_filename_template(self) -> str:
        """``<model>-v<checkpoint version>-{variant}-r<run id>.tflite``; the engine fills ``{variant}``."""
        version = self.model_version if self.model_version is not None else 0
        return f"{self.model_name}-v{version}-{{variant}}-r{self.pk}.tflite"

    def portal_output_dir(self) -> Path:
        """One folder per run: its ``.tflite`` files and report JSON; removed whole if the run fails."""
        return Path(settings.MEDIA_ROOT) / "artifacts" / f"run-{self.pk}"

    @classmethod
    def build_portal_config(
        cls, checkpoint: Checkpoint, dataset: Dataset | None, run_settings: RunSettings
    ) -> ExportConfig:
        data = DataSpec(
            dataset_dir=str(dataset.folder) if dataset else None,
            dataset_type=dataset.dataset_type if dataset else "auto",
            num_calib_samples=run_settings.num_calib_samples,
            num_eval_samples=run_settings.num_eval_samples,
            seed=run_settings.seed,
            preprocess=run_settings.preprocess,
            preprocess_overrides=dict(checkpoint.preprocess_overrides or {}),
            labels_file=checkpoint.labels.path if checkpoint.labels else None,
        )
        return ExportConfig(
            model=checkpoint.model_spec(),
            data=data,
            variants=run_settings.variants,
            # A benchmark run (several variants) is timed at 1 and 2 threads, as on the command line.
            latency_threads=(1, 2) if len(run_settings.variants) > 1 else (1,),
            calibration_method=run_settings.calibration_method,
            max_drop=run_settings.max_drop,
        )

    @classmethod
    def launch(
        cls, checkpoint: Checkpoint, dataset: Dataset | None, run_settings: RunSettings, user=None
    ) -> "ConversionRun":
        """Records a portal run and enqueues it once the row is committed; returns at once."""
        config = cls.build_portal_config(checkpoint, dataset, run_settings)
        with transaction.atomic():
            run = cls.objects.create(
                checkpoint=checkpoint,
                dataset=dataset,
                variants=",".join(run_settings.variants),
                num_calib_samples=run_settings.num_calib_samples,
                preprocess=run_settings.preprocess,
                seed=run_settings.seed,
                config=config.to_dict(),
                created_by=user,
                source=cls.Source.PORTAL,
                model_name=checkpoint.name,
                model_version=checkpoint.version,
                dataset_name=dataset.name if dataset else "",
                queue_name=settings.RQ_QUEUE_NAME,
            )
            run.enqueue()
        return run

    def relaunch(self, user=None) -> "ConversionRun":
        """A new run with the same checkpoint, dataset and settings (runs are never re-used)."""
        if self.checkpoint is None:
            raise ValueError("only portal runs (with a registered checkpoint) can be re-run from the portal")
        return type(self).launch(self.checkpoint, self.dataset, RunSettings.from_config(self.export_config()), user=user)

    def enqueue(self) -> None:
        """Enqueues the RQ job in ``on_commit``, so no worker can pick up a run whose row it cannot see."""
        from conversions import jobs

        transaction.on_commit(lambda: jobs.enqueue_run(self))

    # ---- lifecycle: the only places that move the status ------------------------------------------------

    def _transition(self, from_status: tuple[str, ...], **fields: Any) -> bool:
        """Conditional UPDATE; returns whether this call moved the run (and refreshes the instance)."""
        moved = type(self).objects.filter(pk=self.pk, status__in=from_status).update(**fields)
        for key, value in fields.items():
            if moved and not hasattr(value, "resolve_expression"):
                setattr(self, key, value)
        return bool(moved)

    def start(self, worker: str, hostname: str | None = None, pid: int | None = None) -> bool:
        """Claims a queued run for this process; False if another process, a cancel or the reaper got it."""
        now = timezone.now()
        return self._transition(
            (self.Status.QUEUED,),
            status=self.Status.RUNNING,
            started=now,
            heartbeat=now,
            worker=worker[:200],
            worker_hostname=(hostname or socket.gethostname())[:200],
            worker_pid=pid if pid is not None else os.getpid(),
            stage="starting",
            progress=0.0,
        )

    def finish(self, report: "ExportReport", config: ExportConfig) -> bool:
        """Stores the report, its summary figures and one Artifact per output; False if the run was
        cancelled or reaped meanwhile (then nothing is stored)."""
        data = report.to_dict()
        primary = report.variants and _primary_variant(report)
        # A run whose int8 missed its --max-drop budget is not a success, though its best attempt is kept
        # (as *_over_budget.tflite) and listed so it can be inspected.
        missed = report.budget_misses()
        fields: dict[str, Any] = dict(
            status=self.Status.FAILED if missed else self.Status.SUCCEEDED,
            report=data,
            stage="done",
            progress=1.0,
            config=config.to_dict(),
            error=" ".join(missed),
            **self._end_fields(),
        )
        if primary:
            fid = primary.fidelity
            latency = next(iter(sorted(primary.latency_ms.items())), (None, None))[1]
            fields.update(
                primary_variant=primary.variant,
                size_bytes=primary.size_bytes,
                size_ratio=primary.size_ratio,
                top1_agreement=fid.top1_agreement if fid else None,
                sqnr_db=fid.sqnr_db if fid else None,
                latency_ms=latency.median if latency else None,
            )
        with transaction.atomic():
            if not self._transition((self.Status.RUNNING,), **fields):
                return False
            for v in report.variants:
                Artifact.record(self, v.variant, Path(v.output), sha256=v.sha256, size_bytes=v.size_bytes)
        return True

    def terminate(self, status: str, error: str = "") -> bool:
        """Ends an active run as failed or cancelled; a run already ended keeps its state."""
        return self._transition(self.ACTIVE, status=status, error=error, **self._end_fields())

    def _end_fields(self) -> dict[str, Any]:
        now = timezone.now()
        fields: dict[str, Any] = {"finished": now}
        if self.started:
            fields["duration_s"] = round((now - self.started).total_seconds(), 3)
        return fields

    def cancel(self, reason: str = "cancelled") -> bool:
        """Cancels a queued or running run: marks it cancelled first (the worker sees it and discards its
        outputs), then removes or stops the RQ job."""
        was_running = self.status == self.Status.RUNNING
        if not self.terminate(self.Status.CANCELLED, error=reason):
            return False
        if self.job_id:
            from conversions import jobs

            jobs.stop_job(self.job_id, running=was_running)
        return True

    # ---- progress written by the worker ----------------------------------------------------------------

    def write_progress(self, *, stage: str | None, fraction: float | None, log_lines: list[str], stages=None) -> str:
        """Appends log lines and sets stage/progress in one UPDATE; returns the current status."""
        fields: dict[str, Any] = {"heartbeat": timezone.now()}
        if stage is not None:
            fields["stage"] = stage[:100]
        if fraction is not None:
            fields["progress"] = max(0.0, min(1.0, float(fraction)))
        if stages is not None:
            fields["stages"] = stages
        if log_lines:
            fields["log"] = Concat(F("log"), Value("".join(line + "\n" for line in log_lines)))
        type(self).objects.filter(pk=self.pk, status=self.Status.RUNNING).update(**fields)
        return type(self).objects.filter(pk=self.pk).values_list("status", flat=True).first() or ""

    # ---- dead-run detection --------------------------------------------------------------------------

    def death_reason(self, now=None) -> str | None:
        """Why an active run can no longer finish, or None if it may still be alive (no Redis needed)."""
        if self.status != self.Status.RUNNING:
            return None
        now = now or timezone.now()
        if self.worker_hostname == socket.gethostname() and self.worker_pid and not _pid_alive(self.worker_pid):
            return (
                f"The worker process {self.worker_pid} on {self.worker_hostname} ({self.worker}) died during "
                f"stage '{self.stage}' (killed, out of memory or the machine restarted). Re-run it."
            )
        timeout = timedelta(seconds=settings.QUANTWEB_RUN_HEARTBEAT_TIMEOUT)
        last = self.heartbeat or self.started
        if last and now - last > timeout:
            return (
                f"No heartbeat from worker {self.worker} on {self.worker_hostname} since "
                f"{last:%Y-%m-%d %H:%M:%S} UTC (during stage '{self.stage}'); it was killed or lost. Re-run it."
            )
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _primary_variant(report: "ExportReport"):
    order = ["int8", "int16x8", "dynamic", "float16", "none", "float32"]
    return sorted(report.variants, key=lambda v: order.index(v.variant) if v.variant in order else 99)[0]


class ImmutableError(Exception):
    pass


class Artifact(models.Model):
    """One ``.tflite`` a run produced; immutable once written (the file is made read-only too)."""

    run = models.ForeignKey(ConversionRun, on_delete=models.PROTECT, related_name="artifacts")
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
        return variant_label(self.variant)

    @classmethod
    def record(cls, run: ConversionRun, variant: str, path: Path, sha256: str, size_bytes: int) -> "Artifact":
        stored = media_relative(path)
        if not Path(stored).is_absolute():  # portal artifacts; a CLI user's own output files keep their mode
            path.chmod(0o444)
        return cls.objects.create(
            run=run, variant=parse_variants([variant])[0], filename=path.name, path=stored, sha256=sha256,
            size_bytes=size_bytes,
        )  # fmt: skip
