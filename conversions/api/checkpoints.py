"""``/api/v1/checkpoints/``: list, register (the checkpoint form: versions, trust, limits) and show."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Status, UploadedFile

from conversions.api.errors import form_error
from conversions.api.links import api_url
from conversions.api.schemas import CheckpointOut, ErrorOut
from conversions.forms import CheckpointForm
from conversions.models import Checkpoint

router = Router(tags=["checkpoints"])
MAX_LISTED = 500


def checkpoint_out(request: HttpRequest, ckpt: Checkpoint) -> CheckpointOut:
    return CheckpointOut(
        id=ckpt.pk, name=ckpt.name, version=ckpt.version, sha256=ckpt.sha256, size_bytes=ckpt.size_bytes,
        trusted=ckpt.trusted, launchable=ckpt.launchable, architecture=ckpt.architecture,
        input_shape=list(ckpt.input_shape or []), preprocess=ckpt.preprocess, labels=bool(ckpt.labels),
        created=ckpt.created, url=api_url(request, "checkpoint", ckpt.pk),
    )  # fmt: skip


@router.get("/", response=list[CheckpointOut], url_name="checkpoints")
def list_checkpoints(request: HttpRequest, name: str = ""):
    """Every checkpoint (newest version of each name first), or the versions of ``name``."""
    checkpoints = Checkpoint.objects.all()
    if name:
        checkpoints = checkpoints.filter(name=name)
    return [checkpoint_out(request, c) for c in checkpoints[:MAX_LISTED]]


@router.post("/", response={201: CheckpointOut, 400: ErrorOut}, url_name="checkpoint_new")
def create_checkpoint(
    request: HttpRequest,
    name: Form[str] = "",
    architecture: Form[str] = "",
    input_shape: Form[str] = "1,3,224,224",
    preprocess: Form[str] = "imagenet",
    description: Form[str] = "",
    trusted: Form[bool] = False,
    file: File[UploadedFile] = None,
    architecture_file: File[UploadedFile] = None,
    labels: File[UploadedFile] = None,
):
    """Registers a checkpoint as the upload page does: under an existing name it is the next version;
    ``trusted`` counts only for staff. Multipart: ``file`` (.pth/.pt/.pt2), ``architecture`` (a built-in
    name such as efficientnet-lite0, package.module:factory, or the factory in ``architecture_file``),
    ``input_shape`` (N,C,H,W), ``preprocess``, ``labels`` (one class name a line)."""
    data = {"name": name, "architecture": architecture, "input_shape": input_shape, "preprocess": preprocess,
            "description": description, "trusted": trusted}  # fmt: skip
    form = CheckpointForm(data, request.FILES, user=request.user)
    if not form.is_valid():
        raise form_error(form)
    return Status(201, checkpoint_out(request, form.save()))


@router.get("/{pk}/", response={200: CheckpointOut, 404: ErrorOut}, url_name="checkpoint")
def get_checkpoint(request: HttpRequest, pk: int):
    return checkpoint_out(request, get_object_or_404(Checkpoint, pk=pk))
