"""Conversion runs: what was asked, who asked, where it ran, what happened and what it produced.

A ``ConversionRun`` owns its lifecycle (NetBox's Job pattern): ``launch()`` is the only way a run is born,
for the portal and the CLI alike (the CLI runs it at once, in its own process; the portal enqueues it on
commit), ``start()`` claims it for one process, ``finish()`` / ``terminate()`` end it. Every status change is
a conditional UPDATE on the current status, so two workers, a cancel and the dead-run reaper can race
without a run being done twice or a terminal state being overwritten. The job and the execution are named
by dotted path (``queue``, ``EXECUTE``), so this module imports neither.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Concat
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from conversions import queue
from conversions.engine.config import DEFAULT_CALIBRATION_SAMPLES, ExportConfig
from conversions.engine.errors import render
from conversions.engine.report.results import ExportReport
from conversions.engine.variants import BY_NAME, calibrated
from conversions.media import data_shown_to, media_relative
from conversions.models.artifact import Artifact
from conversions.models.checkpoint import Checkpoint
from conversions.models.dataset import Dataset
from conversions.permissions import require_change
from conversions.run_settings import RunSettings
from conversions.wording import PORTAL_FIELD_NAMES

if TYPE_CHECKING:
    from conversions.engine.progress import Progress

logger = logging.getLogger("quantweb.conversions")

EXECUTE = "conversions.execution.execute_run"
"""Runs a claimed run in this process: what ``launch(immediate=True)`` and the RQ job both call."""


def filter_text(value: str, limit: int = 200) -> str:
    """A free-text filter cut to ``limit`` characters, without the NUL bytes PostgreSQL refuses."""
    return value[:limit].replace("\x00", "").strip()


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

    def matching(self, *, status: str = "", model: str = "", dataset: str = "", variant: str = "",
                 user: str = "") -> "RunQuerySet":
        """The history page's and the API's filters; each one an indexed column (empty means any). Values
        go through ``filter_text`` (no 500 on NUL bytes or long values)."""
        status, model, dataset, variant, user = (
            filter_text(value) for value in (status, model, dataset, variant, user)
        )
        runs = self
        if status:
            runs = runs.filter(status=status)
        if model:
            runs = runs.filter(model_name=model)
        if dataset:
            runs = runs.filter(dataset_name=dataset)
        if variant:
            runs = runs.filter(Q(variants=variant) | Q(variants__startswith=f"{variant},")
                               | Q(variants__endswith=f",{variant}") | Q(variants__contains=f",{variant},"))
        if user:
            runs = runs.filter(created_by__username=user)
        return runs




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
    variants = models.CharField(max_length=60, help_text="Comma-separated variant names, e.g. float32,int8.")
    num_calib_samples = models.PositiveIntegerField(default=DEFAULT_CALIBRATION_SAMPLES)
    preprocess = models.CharField(max_length=30, default="imagenet")
    seed = models.IntegerField(default=0)
    config = models.JSONField(default=dict, help_text="The full ExportConfig the engine runs, outputs resolved.")

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

    # Audit: the bytes it converted, who stopped it, what it repeated.
    checkpoint_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the checkpoint file's bytes the run loaded."
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="cancelled_runs"
    )
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")

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
        return [BY_NAME[v].name if v in BY_NAME else v for v in self.variant_list]

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
        return calibrated(self.variant_list)

    def export_config(self) -> ExportConfig:
        return ExportConfig.from_dict(self.config)

    def export_report(self, user=None) -> ExportReport | None:
        """The stored report, typed; for ``user``, as they may see it (server paths hidden from non-staff)."""
        return ExportReport.from_dict(data_shown_to(user, self.report) if user else self.report) if self.report else None

    def artifact_filename_template(self) -> str:
        """``<model>-v<checkpoint version>-{variant}-r<run id>.tflite``; the engine fills ``{variant}``."""
        version = self.model_version if self.model_version is not None else 0
        return f"{self.model_name}-v{version}-{{variant}}-r{self.pk}.tflite"

    def portal_output_dir(self) -> Path:
        """One folder per run: its ``.tflite`` files and report JSON; removed whole if the run fails."""
        return Path(settings.MEDIA_ROOT) / "artifacts" / f"run-{self.pk}"

    # ---- birth: the only way a run is created ---------------------------------------------------------

    @classmethod
    def launch(
        cls,
        config: ExportConfig,
        user=None,
        source: str = "portal",
        immediate: bool = False,
        *,
        checkpoint: Checkpoint | None = None,
        dataset: Dataset | None = None,
        progress: "Progress | None" = None,
        rerun_of: "ConversionRun | None" = None,
    ) -> "ConversionRun":
        """Records a run of ``config`` and runs it: in this process now (``immediate``, the CLI), or on an RQ
        worker once the row is committed (the portal). A portal run's outputs go into its own folder, named
        after the run; the config is stored once, with those paths resolved. With ``immediate`` the engine's
        error propagates after the run is marked failed."""
        if dataset is None and config.data.dataset_dir:
            dataset = Dataset.objects.filter(path=media_relative(config.data.dataset_dir)).first()
        with transaction.atomic():
            run = cls.objects.create(
                checkpoint=checkpoint,
                dataset=dataset,
                variants=",".join(config.variants),
                num_calib_samples=config.data.num_calib_samples,
                preprocess=config.data.preprocess,
                seed=config.data.seed,
                created_by=user,
                source=source,
                model_name=(checkpoint.name if checkpoint else config.model.name)[:100],
                model_version=checkpoint.version if checkpoint else None,
                dataset_name=(dataset.name if dataset else Path(config.data.dataset_dir or "").name)[:200],
                queue_name="" if immediate else settings.RQ_QUEUE_NAME,
                rerun_of=rerun_of,
            )
            if source == cls.Source.PORTAL:
                config = dataclasses.replace(config, output=None, output_dir=str(run.portal_output_dir()),
                                             output_template=run.artifact_filename_template())  # fmt: skip
            run.config = config.to_dict()
            cls.objects.filter(pk=run.pk).update(config=run.config)
            if not immediate:
                transaction.on_commit(run.enqueue)
        if immediate:
            if progress is not None:
                progress.log(f"recorded as conversion run {run.pk}")
            import_string(EXECUTE)(run, progress)
            run.refresh_from_db()
        return run

    def relaunch(self, user) -> "ConversionRun":
        """A new run with the same checkpoint, dataset and settings (runs are never re-used), for the run's
        owner or staff; ``PermissionDenied`` for anyone else, ``ValueError`` with what to do if it cannot run."""
        require_change(user, self, "re-run")
        if self.checkpoint is None:
            raise ValueError("CLI runs without a registered checkpoint cannot be re-run here.")
        if not self.checkpoint.launchable:
            raise ValueError(f"{self.checkpoint} runs code, so a staff member must trust it before it can run again.")
        config = RunSettings.from_config(self.export_config()).config_for(self.checkpoint, self.dataset)
        return type(self).launch(config, user, checkpoint=self.checkpoint, dataset=self.dataset, rerun_of=self)

    def enqueue(self) -> None:
        """Puts the run on its RQ queue (after commit, so no worker picks up a run whose row it cannot see).
        If Redis is unreachable the run is marked failed with how to start Redis, not left queued forever."""
        job_id = queue.new_job_id(self.pk)
        type(self).objects.filter(pk=self.pk).update(job_id=job_id)
        self.job_id = job_id
        try:
            queue.enqueue_run(self.pk, job_id, self.queue_name or settings.RQ_QUEUE_NAME,
                              f"conversion run {self.pk} ({self.model_name} {self.variants})")  # fmt: skip
        except RedisError as err:
            self.terminate(self.Status.FAILED, error=f"Could not enqueue: {queue.redis_down_message(err)}")

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

    def finish(self, report: ExportReport) -> bool:
        """Stores the report, its summary figures and one Artifact per output; False if the run was
        cancelled or reaped meanwhile (then nothing is stored)."""
        data = report.to_dict()
        primary = report.primary
        # A run whose int8 missed its --max-drop budget is not a success, though its best attempt is kept
        # (as *_over_budget.tflite) and listed so it can be inspected.
        missed = report.budget_misses()
        fields: dict[str, Any] = dict(
            status=self.Status.FAILED if missed else self.Status.SUCCEEDED,
            report=data,
            stage="done",
            progress=1.0,
            error=render(" ".join(missed), PORTAL_FIELD_NAMES),
            **self._end_fields(),
        )
        if primary:
            fid = primary.fidelity
            latency = primary.latency()
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

    def cancel_by(self, user) -> bool:
        """``cancel`` for the run's owner or staff (``PermissionDenied`` for anyone else), recording who."""
        require_change(user, self, "cancel")
        return self.cancel(reason=f"Cancelled by {user.get_username()}.", by=user)

    def cancel(self, reason: str = "cancelled", by=None) -> bool:
        """Cancels a queued or running run: marks it cancelled first (the worker sees it and discards its
        outputs), then removes or stops the RQ job."""
        was_running = self.status == self.Status.RUNNING
        extra = {"cancelled_by": by} if by is not None else {}
        if not self._transition(self.ACTIVE, status=self.Status.CANCELLED, error=reason, **extra,
                                **self._end_fields()):  # fmt: skip
            return False
        if self.job_id:
            queue.stop_job(self.job_id, running=was_running)
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
