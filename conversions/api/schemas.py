"""What the API takes and gives, typed (django-ninja turns these into the OpenAPI document).

Defaults come from ``RunSettings`` (the new-run form's) and the figures from the engine's ``ExportReport``
dataclasses, so the API cannot drift from what the pages and the engine mean by a field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema

from conversions.engine.config import DEFAULT_CALIBRATION
from conversions.engine.report.results import VariantReport
from conversions.run_settings import RunSettings


class ErrorOut(Schema):
    error: str
    field: str = ""


class CheckpointOut(Schema):
    id: int
    name: str
    version: int
    sha256: str
    size_bytes: int
    trusted: bool
    launchable: bool
    architecture: str
    input_shape: list[int]
    preprocess: str
    labels: bool
    created: datetime
    url: str


class DatasetOut(Schema):
    id: int
    name: str
    source: str
    layout: str
    images: int
    classes: int
    class_names: list[str]
    skipped: int
    description: str
    created: datetime
    url: str
    status: str = "ready"
    progress: float = 1.0
    error: str = ""


class RunIn(Schema):
    """The new-run form's fields (the same names, limits and defaults)."""

    checkpoint: int
    dataset: int | None = None
    variants: list[str] = list(RunSettings.variants)
    num_calib_samples: int = RunSettings.num_calib_samples
    num_eval_samples: int = RunSettings.num_eval_samples
    preprocess: str = ""
    seed: int = RunSettings.seed
    calibration_method: str = DEFAULT_CALIBRATION
    max_drop: float | None = None


class RunCreatedOut(Schema):
    id: int
    status: str
    url: str


class RunListItem(Schema):
    id: int
    status: str
    stage: str
    progress: float
    model: str
    model_version: int | None
    dataset: str
    variants: list[str]
    primary_variant: str
    size_bytes: int | None
    size_ratio: float | None
    top1_agreement: float | None
    sqnr_db: float | None
    latency_ms: float | None
    user: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    url: str


class RunPage(Schema):
    count: int
    page: int
    pages: int
    page_size: int
    results: list[RunListItem]


class VariantSummary(Schema):
    size_bytes: int
    size_ratio: float | None
    latency_ms: float | None
    top1_agreement: float | None
    confident_top1_agreement: float | None
    sqnr_db: float | None
    fully_integer: bool

    @classmethod
    def of(cls, variant: VariantReport) -> "VariantSummary":
        latency, fidelity = variant.latency(), variant.fidelity
        return cls(
            size_bytes=variant.size_bytes, size_ratio=variant.size_ratio,
            latency_ms=latency.median if latency else None,
            top1_agreement=fidelity.top1_agreement if fidelity else None,
            confident_top1_agreement=fidelity.confident_top1_agreement if fidelity else None,
            sqnr_db=fidelity.sqnr_db if fidelity else None, fully_integer=variant.fully_integer,
        )  # fmt: skip


class ArtifactOut(Schema):
    variant: str
    filename: str
    size_bytes: int
    sha256: str
    url: str


class RunOut(Schema):
    id: int
    status: str
    stage: str
    progress: float
    error: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    checkpoint: int | None
    dataset: int | None
    config: dict[str, Any]
    summary: dict[str, VariantSummary]
    artifacts: list[ArtifactOut]
    report_url: str | None
    url: str
