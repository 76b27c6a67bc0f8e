"""Errors as ``{"error": "...", "field": "..."}``: the one shape every failing request answers with.

``field`` is the form field at fault (the names of the new-run, checkpoint and dataset forms, as the pages
use them; see ``conversions.wording``), or empty when the error is about the request as a whole.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from conversions.engine.errors import QuantwebError
from conversions.media import shown_to
from conversions.run_actions import ActionRefused, TooManyQueued
from conversions.upload_guard import UploadRefused
from conversions.wording import PORTAL_FIELD_NAMES, RUN_FORM_FIELDS

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger("quantweb.api")


class ApiError(Exception):
    """Raised by an endpoint to answer ``status`` with ``{"error": message, "field": field}``."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def form_error(form: forms.Form) -> ApiError:
    """The first of a form's errors, in the form's field order (errors about the whole form last)."""
    errors = form.errors.get_json_data()
    for name in [*form.fields, forms.forms.NON_FIELD_ERRORS]:
        if name in errors:
            field = "" if name == forms.forms.NON_FIELD_ERRORS else name
            return ApiError(400, " ".join(e["message"] for e in errors[name]), field)
    return ApiError(400, "The request was not valid.")


def engine_error(err: QuantwebError) -> ApiError:
    """An engine error worded as the portal words it, on the new-run form field it is about."""
    return ApiError(400, err.render(PORTAL_FIELD_NAMES), RUN_FORM_FIELDS.get(err.field or "", ""))


def install(api: "NinjaAPI") -> None:
    """Makes every failure (ours, Django's and django-ninja's) answer in the one shape."""

    def answer(request: HttpRequest, status: int, message: str, field: str = "") -> HttpResponse:
        # the same rule as the pages: no absolute server paths for non-staff users
        shown = shown_to(getattr(request, "user", None), message)
        return api.create_response(request, {"error": shown, "field": field}, status=status)

    @api.exception_handler(ApiError)
    def api_error(request, exc: ApiError):
        return answer(request, exc.status, exc.message, exc.field)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        response = answer(request, 401, "Send a valid API token as 'Authorization: Bearer <token>' "
                                        "(make one on /tokens/ or with manage.py api_token).")  # fmt: skip
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return answer(request, 403, str(exc) or "You may not do this.")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return answer(request, 404, str(exc) or "Not found.")

    @api.exception_handler(ActionRefused)
    def refused(request, exc: ActionRefused):
        return answer(request, 429 if isinstance(exc, TooManyQueued) else 409, str(exc), exc.field)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        message = str(exc)
        if message == "Cannot parse request body":  # django-ninja's words for a body that is not JSON
            message = "The request body is not a JSON object; send one with 'Content-Type: application/json'."
        return answer(request, exc.status_code, message)

    @api.exception_handler(UploadRefused)
    def upload_refused(request, exc: UploadRefused):
        return answer(request, exc.status, exc.message, exc.field)

    @api.exception_handler(Exception)
    def unexpected(request, exc: Exception):
        # a bug, not bad input: the traceback goes to the log, the client gets JSON it can parse, not HTML
        logger.exception("unexpected error answering %s %s", request.method, request.path)
        return answer(request, 500, f"The server failed on this request ({type(exc).__name__}); it was logged. "
                                    "Try again, and tell staff if it persists.")  # fmt: skip

    @api.exception_handler(ValidationError)
    def invalid(request, exc: ValidationError):
        first = exc.errors[0] if exc.errors else {}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form", "payload")]
        field = loc[-1] if loc else ""
        message = first.get("msg", "Invalid input.")
        return answer(request, 400, f"{field}: {message}" if field else message, field)
