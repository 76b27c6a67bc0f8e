"""``/api/v1/runs/``: launch (the new-run form, then ``ConversionRun.launch``), list, show, cancel, re-run,
and the report download. Cancel and re-run go through ``run_actions`` (owner or staff, as on the pages)."""

from __future__ import annotations

import json
import logging

from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from redis.exceptions import RedisError

from conversions import run_actions
from conversions.api.errors import ApiError, engine_error, form_error
from conversions.api.links import api_url
from conversions.api.schemas import (
    ArtifactOut,
    ErrorOut,
    RunCreatedOut,
    RunIn,
    RunListItem,
    RunOut,
    RunPage,
    VariantSummary,
)
from conversions.downloads import file_download, json_download
from conversions.engine.errors import QuantwebError
from conversions.media import data_shown_to, shown_to
from conversions.forms import NewRunForm
from conversions.models import ConversionRun
from conversions.reaper import reap_dead_runs

logger = logging.getLogger("quantweb.conversions")
router = Router(tags=["runs"])
MAX_PAGE_SIZE = 100


class RunFilters(Schema):
    status: str = ""
    model: str = ""
    dataset: str = ""
    variant: str = ""
    user: str = ""
    page: int = 1
    page_size: int = 50


def _created(request: HttpRequest, run: ConversionRun) -> RunCreatedOut:
    return RunCreatedOut(id=run.pk, status=run.status, url=api_url(request, "run", run.pk))


@router.post("/", response={201: RunCreatedOut, 400: ErrorOut}, url_name="runs_new")
def create_run(request: HttpRequest, payload: RunIn):
    """Queues a run, validated by the new-run form (the same fields, limits and trust rule)."""
    data = {k: v for k, v in payload.model_dump().items() if v is not None}
    form = NewRunForm(data, user=request.user)
    if not form.is_valid():
        raise form_error(form)
    try:
        run = form.launch(request.user)
    except QuantwebError as err:
        raise engine_error(err) from None
    return Status(201, _created(request, run))


@router.get("/", response={200: RunPage, 400: ErrorOut, 404: ErrorOut}, url_name="runs")
def list_runs(request: HttpRequest, filters: Query[RunFilters]):
    """Runs, newest first, ``page_size`` (at most 100) a page; filtered as on the history page."""
    if not 1 <= filters.page_size <= MAX_PAGE_SIZE:
        raise ApiError(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}.", "page_size")
    runs = ConversionRun.objects.for_list().matching(**filters.model_dump(exclude={"page", "page_size"}))
    paginator = Paginator(runs, filters.page_size)
    try:
        page = paginator.page(filters.page)
    except EmptyPage:
        raise ApiError(404, f"There is no page {filters.page}; there are {paginator.num_pages}.", "page") from None
    results = [
        RunListItem(
            id=r.pk, status=r.status, stage=r.stage, progress=r.progress, model=r.model_name,
            model_version=r.model_version, dataset=r.dataset_name, variants=r.variant_list,
            primary_variant=r.primary_variant, size_bytes=r.size_bytes, size_ratio=r.size_ratio,
            top1_agreement=r.top1_agreement, sqnr_db=r.sqnr_db, latency_ms=r.latency_ms,
            user=r.created_by.username if r.created_by else "", created=r.created, started=r.started,
            finished=r.finished, url=api_url(request, "run", r.pk),
        )  # fmt: skip
        for r in page.object_list
    ]
    return RunPage(count=paginator.count, page=page.number, pages=paginator.num_pages,
                   page_size=filters.page_size, results=results)  # fmt: skip


@router.get("/{pk}/", response={200: RunOut, 404: ErrorOut}, url_name="run")
def get_run(request: HttpRequest, pk: int):
    """A run's state and, once it succeeded, its figures per variant and its artifacts' download URLs."""
    run = get_object_or_404(ConversionRun, pk=pk)
    if run.is_active:  # a client polling a run whose worker died learns it failed, as the run page does
        try:
            reap_dead_runs()
        except RedisError as err:
            logger.warning("reaper skipped: %s", err)
        run.refresh_from_db()
    report = run.export_report(request.user)
    artifacts = [
        ArtifactOut(variant=a.variant, filename=a.filename, size_bytes=a.size_bytes, sha256=a.sha256,
                    url=api_url(request, "artifact", a.pk, a.filename))  # fmt: skip
        for a in run.artifacts.all()
    ]
    return RunOut(
        id=run.pk, status=run.status, stage=run.stage, progress=run.progress, error=shown_to(request.user, run.error),
        created=run.created, started=run.started, finished=run.finished, checkpoint=run.checkpoint_id,
        dataset=run.dataset_id, config=data_shown_to(request.user, run.config or {}),
        summary={v.variant: VariantSummary.of(v) for v in report.variants} if report else {},
        artifacts=artifacts, report_url=api_url(request, "run_report", run.pk) if report else None,
        url=api_url(request, "run", run.pk),
    )  # fmt: skip


@router.post("/{pk}/cancel/", response={200: RunCreatedOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
             url_name="run_cancel")  # fmt: skip
def cancel_run(request: HttpRequest, pk: int):
    """Cancels a queued or running run (its owner or staff); 409 if it had already ended."""
    run = get_object_or_404(ConversionRun, pk=pk)
    run_actions.cancel_run(run, request.user)
    return _created(request, run)


@router.post("/{pk}/rerun/", response={201: RunCreatedOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
             url_name="run_rerun")  # fmt: skip
def rerun(request: HttpRequest, pk: int):
    """A new run with the same checkpoint, dataset and settings (its owner or staff)."""
    run = get_object_or_404(ConversionRun.objects.select_related("checkpoint"), pk=pk)
    return Status(201, _created(request, run_actions.rerun(run, request.user)))


@router.get("/{pk}/report.json", response={200: None, 404: ErrorOut}, url_name="run_report")
def download_report(request: HttpRequest, pk: int):
    """The run's report JSON as the engine wrote it beside the ``.tflite`` files; for non-staff users with
    server paths cut to file names, as every page shows them."""
    from conversions.engine.report.outputs import plan_outputs

    run = get_object_or_404(ConversionRun.objects.only("id", "config", "report"), pk=pk)
    if not run.report:
        raise ApiError(404, f"Run {run.pk} has no report yet; it has one once it succeeded.")
    config = run.export_config()
    path = plan_outputs(config, config.model.name).report
    filename = f"report-r{run.pk}.json"
    if request.user.is_staff:
        return file_download(path, filename)
    if not path.is_file():
        raise ApiError(404, f"{filename} is recorded but its file is missing; ask staff to look at run {run.pk}.")
    return json_download(data_shown_to(request.user, json.loads(path.read_text())), filename)
