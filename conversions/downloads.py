"""Serving a stored file as a download, for the pages and the API alike: the file name a person saves it
under (``Content-Disposition``) and its SHA-256 (``X-Checksum-SHA256``), so a script can check what it got."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse

from conversions.media import file_sha256
from conversions.models import Artifact


def file_download(path: Path, filename: str, sha256: str | None = None) -> FileResponse:
    """``path`` as an attachment named ``filename``; the digest is computed when none was recorded."""
    if not path.is_file():
        raise Http404(f"{filename} is recorded but its file is missing from {path.parent}")
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=filename)
    response["X-Checksum-SHA256"] = sha256 or file_sha256(path)
    return response


def artifact_download(artifact: Artifact) -> FileResponse:
    return file_download(artifact.file_path, artifact.filename, artifact.sha256)


def json_download(data, filename: str) -> HttpResponse:
    """``data`` as a JSON attachment named ``filename``, with its digest as ``file_download`` gives one."""
    body = json.dumps(data, indent=2).encode()
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Checksum-SHA256"] = hashlib.sha256(body).hexdigest()
    return response
