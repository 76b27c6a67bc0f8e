"""``/api/v1/artifacts/<id>/<filename>``: a ``.tflite`` file, as the page's download serves it."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from conversions.api.schemas import ErrorOut
from conversions.downloads import artifact_download
from conversions.models import Artifact

router = Router(tags=["artifacts"])


@router.get("/{pk}/{filename}", response={200: None, 404: ErrorOut}, url_name="artifact")
def download_artifact(request: HttpRequest, pk: int, filename: str):
    """The file, with ``Content-Disposition`` (its name) and ``X-Checksum-SHA256`` (its digest)."""
    return artifact_download(get_object_or_404(Artifact, pk=pk, filename=filename))
