"""Absolute URLs of API resources, so a client follows what it was given instead of building paths."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

NAMESPACE = "api-v1"


def api_url(request: HttpRequest, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(f"{NAMESPACE}:{name}", args=args))
