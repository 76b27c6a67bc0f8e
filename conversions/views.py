"""Pages: fetch, call a model method, render. Every view needs a logged-in user (LoginRequiredMiddleware)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from conversions import queue, report_pages, run_actions
from conversions.downloads import artifact_download
from conversions.engine.errors import QuantwebError
from conversions.engine.report.results import ExportReport
from conversions.forms import CheckpointForm, DatasetForm, NewRunForm
from conversions.media import data_shown_to, media_absolute, shown_to
from conversions.models.run import filter_text
from conversions.models import (
    VARIANT_CHOICES,
    Artifact,
    Checkpoint,
    ConversionRun,
    Dataset,
)
from conversions.reaper import reap_dead_runs
from conversions.wording import PORTAL_FIELD_NAMES

logger = logging.getLogger("quantweb.conversions")
PAGE_SIZE = 50
MAX_COMPARE = 20


def _reap(request: HttpRequest) -> None:
    """Marks dead runs failed before showing them; a page still renders when Redis is down, with a note."""
    try:
        reap_dead_runs()
    except RedisError as err:
        messages.warning(request, queue.redis_down_message(err))


def history(request: HttpRequest) -> HttpResponse:
    _reap(request)
    filters = {key: _text_param(request, key) for key in ("status", "model", "dataset", "variant", "user")}
    runs = ConversionRun.objects.for_list().matching(**filters)
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in filters.items() if v})
    selected, _ = _run_ids(request.GET.getlist("selected"))
    context = {
        "page": page,
        "selected": selected,
        "filters": filters,
        "query": query,
        "statuses": ConversionRun.Status.choices,
        "variant_choices": VARIANT_CHOICES,
        "model_names": Checkpoint.objects.order_by("name").values_list("name", flat=True).distinct(),
        "dataset_names": Dataset.objects.order_by("name").values_list("name", flat=True),
        "usernames": _usernames(),
    }
    return render(request, "conversions/history.html", context)


def _usernames() -> list[str]:
    from django.contrib.auth import get_user_model

    return list(get_user_model().objects.order_by("username").values_list("username", flat=True)[:500])


def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ConversionRun.objects.select_related("checkpoint", "dataset", "created_by"), pk=pk)
    if run.is_active:
        _reap(request)
        run.refresh_from_db()
    report = run.export_report(request.user)
    typed = report or ExportReport(model={}, variants=())
    details = report_pages.variant_details(typed)
    layer_charts = {}
    for detail in details:
        chart = report_pages.layer_error_chart(detail["variant"], detail.pop("all_layers"))
        if chart:
            detail["layer_chart"] = f"layers-{detail['variant']}"
            layer_charts[detail["layer_chart"]] = chart
    context = {
        "run": run,
        "report": report,
        "report_json": data_shown_to(request.user, run.report),
        "artifacts": list(run.artifacts.all()),
        "variants_table": report_pages.variants_table(typed),
        "device": report_pages.device_summary(typed),
        "charts": report_pages.run_charts(typed),
        "layer_charts": layer_charts,
        "warnings": report_pages.warnings(typed),
        "details": details,
        "disagreements": report_pages.disagreement_section(typed),
        "calibration_files": report_pages.calibration_files(typed),
        "log_tail": run.log[-20000:],
    }
    return render(request, "conversions/run_detail.html", context)


def run_compare(request: HttpRequest) -> HttpResponse:
    """``/runs/compare/?ids=3,5,8`` (or ``ids=3&ids=5``): the variants of several runs side by side, in one
    query that reads the report's variants and PyTorch accuracy, never the log or the config."""
    ids, bad = _run_ids(request.GET.getlist("ids"))
    if bad:
        messages.warning(request, f"Ignored {', '.join(bad)}: run ids are numbers.")
    if len(ids) > MAX_COMPARE:
        messages.warning(request, f"Comparing the first {MAX_COMPARE} of the {len(ids)} runs asked for.")
        ids = ids[:MAX_COMPARE]
    runs = list(ConversionRun.objects.for_compare().filter(pk__in=ids).order_by("pk"))
    missing = sorted(set(ids) - {r.pk for r in runs})
    if missing:
        messages.warning(request, f"No run {', '.join(f'#{pk}' for pk in missing)}.")
    reports = [ExportReport.from_dict({"variants": r.report_variants, "pytorch": {"accuracy": r.pytorch_accuracy}})
               for r in runs]  # fmt: skip
    threads = report_pages.latency_threads(reports)
    entries = []
    for run, report in zip(runs, reports):
        charted = run.status == ConversionRun.Status.SUCCEEDED and bool(report.variants)
        rows = report_pages.variant_rows(report, threads) if charted else []
        entries.append({"run": run, "report": report, "charted": charted, "rows": rows})
    context = {
        "entries": entries,
        "variants_table": report_pages.compare_table(entries, threads),
        "charts": report_pages.compare_charts((e["run"].pk, e["report"]) for e in entries if e["charted"]),
        "ids": ",".join(str(r.pk) for r in runs),
    }
    return render(request, "conversions/compare.html", context)


def _run_ids(values: list[str]) -> tuple[list[int], list[str]]:
    """``["3,5", "8"]`` -> ``([3, 5, 8], [])``: ids in the order given, once each; what is not a run id (not
    ASCII digits, ``²`` included, or past the database's integer range) apart."""
    ids: list[int] = []
    bad: list[str] = []
    for part in (p.strip() for value in values for p in value.split(",")):
        if not part:
            continue
        if _is_id(part):
            if int(part) not in ids:
                ids.append(int(part))
        else:
            bad.append(repr(part[:20]))
    return ids, bad


MAX_ID = 2**63 - 1


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_ID


def _text_param(request: HttpRequest, name: str, limit: int = 200) -> str:
    return filter_text(request.GET.get(name, ""), limit)


def _id_param(request: HttpRequest, name: str) -> str:
    """A query parameter that names a record by id, or "" when it is not one (never a 500 on bad input)."""
    value = request.GET.get(name, "").strip()
    return value if _is_id(value) else ""


def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the run page polls while the run is active."""
    run = get_object_or_404(ConversionRun.objects.defer("report", "config"), pk=pk)
    if run.is_active:
        try:
            reap_dead_runs()
        except RedisError as err:
            logger.warning("reaper skipped: %s", err)
        run.refresh_from_db(fields=["status", "stage", "progress", "stages", "log", "error", "duration_s", "started"])
    return JsonResponse({
        "status": run.status,
        "active": run.is_active,
        "stage": run.stage,
        "progress": run.progress,
        "timeline": run.stage_timeline,
        "log_tail": shown_to(request.user, run.log[-8000:]),
        "error": shown_to(request.user, run.error),
    })  # fmt: skip


def new_run(request: HttpRequest) -> HttpResponse:
    initial = {name: _id_param(request, name) for name in ("checkpoint", "dataset") if _id_param(request, name)}
    form = NewRunForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        run = form.launch(request.user)
        messages.success(request, f"Run {run.pk} queued.")
        return redirect(run)
    return render(request, "conversions/run_new.html", {"form": form})


@require_POST
def cancel_run(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ConversionRun, pk=pk)
    try:
        run_actions.cancel_run(run, request.user)
    except run_actions.ActionRefused as err:
        messages.warning(request, str(err))
    else:
        messages.info(request, f"Run {run.pk} cancelled.")
    return redirect(run)


@require_POST
def rerun(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ConversionRun.objects.select_related("checkpoint"), pk=pk)
    try:
        new = run_actions.rerun(run, request.user)
    except run_actions.ActionRefused as err:
        messages.error(request, str(err))
        return redirect(run)
    messages.success(request, f"Run {new.pk} queued (a re-run of run {run.pk}).")
    return redirect(new)


def download(request: HttpRequest, pk: int, filename: str) -> FileResponse:
    return artifact_download(get_object_or_404(Artifact, pk=pk, filename=filename))


def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = Dataset.objects.select_related("created_by").annotate(run_count=Count("runs"))
    return render(request, "conversions/dataset_list.html", {"datasets": datasets})


def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset.objects.select_related("created_by"), pk=pk)
    runs = ConversionRun.objects.for_list().filter(dataset=dataset)[:20]
    return render(request, "conversions/dataset_detail.html", {"dataset": dataset, "runs": runs})


def dataset_thumbnail(request: HttpRequest, pk: int, index: int) -> FileResponse:
    dataset = get_object_or_404(Dataset, pk=pk)
    try:
        path = media_absolute(dataset.thumbnails[index]["file"])
    except (IndexError, KeyError, TypeError):
        raise Http404("no such thumbnail") from None
    if not path.is_file():
        raise Http404("thumbnail file missing")
    return FileResponse(open(path, "rb"), content_type="image/jpeg")


@require_POST
def dataset_detect(request: HttpRequest, pk: int) -> HttpResponse:
    """Detects the structure again (a server folder may have changed since it was registered)."""
    dataset = get_object_or_404(Dataset, pk=pk)
    try:
        dataset.detect_again(request.user)
    except QuantwebError as err:
        messages.error(request, shown_to(request.user, err.render(PORTAL_FIELD_NAMES)))
        return redirect(dataset)
    except ValueError as err:  # still registering, or failed
        messages.error(request, str(err))
        return redirect(dataset)
    messages.success(request, f"Detected again: {dataset.structure.get('description', '')}")
    return redirect(dataset)


@require_POST
def dataset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=pk)
    try:
        dataset.delete_by(request.user)
    except ValueError as err:
        messages.error(request, str(err))
        return redirect(dataset)
    messages.success(request, f"Dataset {dataset.name} deleted.")
    return redirect("conversions:datasets")


def dataset_new(request: HttpRequest) -> HttpResponse:
    form = DatasetForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        dataset = form.register()
        if dataset is not None and dataset.status == Dataset.Status.REGISTERING:
            messages.success(request, f"Dataset {dataset.name} uploaded; a worker is extracting and checking it.")
            return redirect(dataset)
        if dataset is not None:
            messages.success(request, f"Dataset {dataset.name} registered: {dataset.structure.get('description', '')}")
            return redirect(dataset)
    return render(request, "conversions/dataset_new.html", {"form": form})


def checkpoint_list(request: HttpRequest) -> HttpResponse:
    checkpoints = Checkpoint.objects.select_related("created_by").annotate(run_count=Count("runs"))
    return render(request, "conversions/checkpoint_list.html", {"checkpoints": checkpoints})


def checkpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("created_by"), pk=pk)
    versions = Checkpoint.objects.filter(name=checkpoint.name).only("id", "name", "version", "created")
    runs = ConversionRun.objects.for_list().filter(checkpoint=checkpoint)[:20]
    context = {"checkpoint": checkpoint, "versions": versions, "runs": runs, "labels": checkpoint.label_names()}
    return render(request, "conversions/checkpoint_detail.html", context)


def checkpoint_new(request: HttpRequest) -> HttpResponse:
    form = CheckpointForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        checkpoint = form.save()
        messages.success(request, f"Checkpoint {checkpoint} registered.")
        return redirect(checkpoint)
    return render(request, "conversions/checkpoint_new.html", {"form": form})
