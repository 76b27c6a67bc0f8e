"""Uploads are refused while they stream, not after they were spooled to disk.

``GuardedUploadHandler`` comes first in ``FILE_UPLOAD_HANDLERS``, so Django asks it before any byte of a
multipart body is read: a request from nobody (no signed-in user, no valid API token) longer than a form of
a few fields, or one whose declared length is over ``QUANTWEB_MAX_UPLOAD_BODY``, is refused there; a file that
grows past its field's limit stops
the upload at the chunk that crosses it (the temporary file is closed and so deleted). The refusal is
``UploadRefused``, a ``MultiPartParserError``: the pages answer it through ``handler400`` with a worded page,
the API through its exception handlers with the JSON error shape.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.views.defaults import bad_request


ANONYMOUS_BODY_MAX = 64 * 1024
"""The longest multipart body read without a signed-in user or token: a form's fields, never an upload."""


class UploadRefused(MultiPartParserError):
    """An upload refused before or while it was read: ``status`` (403, 413), a sentence saying why and the
    form field at fault (empty: the request as a whole)."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB"


def file_limit(field_name: str) -> int:
    """The most bytes one uploaded file of the form field ``field_name`` may have (the checkpoint and dataset
    forms' and the API's field names); any other file field gets the whole body's limit."""
    limits = {
        "archive": settings.QUANTWEB_MAX_DATASET_UPLOAD,
        "file": settings.QUANTWEB_MAX_CHECKPOINT_UPLOAD,
        "architecture_file": settings.QUANTWEB_MAX_ARCHITECTURE_UPLOAD,
        "labels": settings.QUANTWEB_MAX_LABELS_UPLOAD,
    }
    return limits.get(field_name, settings.QUANTWEB_MAX_UPLOAD_BODY)


def may_upload(request: HttpRequest) -> bool:
    """A signed-in user (session) or a valid ``Authorization: Bearer`` token."""
    from conversions.models import ApiToken

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and ApiToken.authenticate(token.strip()) is not None


class GuardedUploadHandler(FileUploadHandler):
    """Refuses a multipart body before reading it (no user, too long) or stops it mid-file (a file over
    ``file_limit``); passes every chunk on to the next handler otherwise."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.refusal: UploadRefused | None = None
        self.received = 0
        self.limit = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # a form of a few fields (the login page, posted as multipart by some clients) is no upload
        if content_length > ANONYMOUS_BODY_MAX and not may_upload(self.request):
            raise UploadRefused(403, "Sign in (on the pages) or send a valid API token ('Authorization: Bearer "
                                     "<token>') before uploading; the upload was not read.")  # fmt: skip
        body_limit = settings.QUANTWEB_MAX_UPLOAD_BODY
        if content_length > body_limit:
            raise UploadRefused(413, f"The upload is {_mb(content_length)}; the server takes at most "
                                     f"{_mb(body_limit)} in one request. Nothing was read.")  # fmt: skip
        return None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.received, self.limit = 0, file_limit(field_name)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            message = (f"{self.file_name} is larger than {_mb(self.limit)}, the limit for '{self.field_name}'; "
                       "upload a smaller file. It was not kept.")  # fmt: skip
            self.refusal = UploadRefused(413, message, self.field_name)
            # Django closes (and so deletes) the temporary files and stops reading the body
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int):
        return None

    def upload_complete(self) -> None:
        """Called once the parser stopped: a stopped upload is answered as refused, not as a form without
        its file."""
        if self.refusal is not None:
            raise self.refusal


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler400``: a refused upload answered with its reason and status; any other bad request as Django
    answers it."""
    if isinstance(exception, UploadRefused):
        return render(request, "upload_refused.html", {"message": exception.message}, status=exception.status)
    return bad_request(request, exception)
