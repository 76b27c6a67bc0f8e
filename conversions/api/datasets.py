"""``/api/v1/datasets/``: list, register (the dataset form: archive checks, extraction, detection) and show."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Status, UploadedFile

from conversions.api.errors import form_error
from conversions.api.links import api_url
from conversions.api.schemas import DatasetOut, ErrorOut
from conversions.forms import DatasetForm
from conversions.models import Dataset

router = Router(tags=["datasets"])
MAX_LISTED = 500


def dataset_out(request: HttpRequest, dataset: Dataset) -> DatasetOut:
    return DatasetOut(
        id=dataset.pk, name=dataset.name, source=dataset.source, layout=dataset.layout, images=dataset.num_images,
        classes=dataset.num_classes, class_names=list(dataset.structure.get("classes") or []),
        skipped=dataset.num_skipped, description=dataset.description, created=dataset.created,
        url=api_url(request, "dataset", dataset.pk), status=dataset.status, progress=dataset.progress,
        error=dataset.error,
    )  # fmt: skip


@router.get("/", response=list[DatasetOut], url_name="datasets")
def list_datasets(request: HttpRequest):
    return [dataset_out(request, d) for d in Dataset.objects.all()[:MAX_LISTED]]


@router.post("/", response={201: DatasetOut, 202: DatasetOut, 400: ErrorOut}, url_name="dataset_new")
def create_dataset(
    request: HttpRequest,
    name: Form[str] = "",
    server_path: Form[str] = "",
    dataset_type: Form[str] = "auto",
    description: Form[str] = "",
    archive: File[UploadedFile] = None,
):
    """Registers a dataset as the upload page does. Multipart: ``archive`` (.zip, .tar.gz, .tar of an
    ImageFolder, YOLO or flat folder of images), or ``server_path`` (a folder inside an allowed root). A large
    archive answers 202 with the row registering: follow ``url`` until ``status`` is ready or failed."""
    data = {"name": name, "server_path": server_path, "dataset_type": dataset_type, "description": description}
    form = DatasetForm(data, request.FILES, user=request.user)
    dataset = form.register() if form.is_valid() else None
    if dataset is None:
        raise form_error(form)
    queued = dataset.status == Dataset.Status.REGISTERING
    return Status(202 if queued else 201, dataset_out(request, dataset))


@router.get("/{pk}/", response={200: DatasetOut, 404: ErrorOut}, url_name="dataset")
def get_dataset(request: HttpRequest, pk: int):
    return dataset_out(request, get_object_or_404(Dataset, pk=pk))
