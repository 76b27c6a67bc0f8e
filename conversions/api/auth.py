"""``Authorization: Bearer <token>``: a token made on ``/tokens/`` or by ``manage.py api_token``."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from ninja.security import HttpBearer

from conversions.models import ApiToken


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user  # the shared rules (forms, permissions) read the user from the request
        return user


def docs_access(view):
    """The OpenAPI document and the docs page: for a valid token (CI fetching the schema) or a signed-in
    session (a person browsing the docs); anyone else is sent to log in."""
    bearer = BearerToken()
    session_view = login_required(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if request.headers.get("Authorization") and bearer(request) is not None:
            return view(request, *args, **kwargs)
        return session_view(request, *args, **kwargs)

    return wrapped
