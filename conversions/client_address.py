"""The address a request really came from, behind ``QUANTWEB_TRUSTED_PROXIES`` reverse proxies.

Each trusted proxy appends the address it was connected from to ``X-Forwarded-For``, so the client is the
entry that many places from the right; entries further left are whatever the client sent and are never
believed. Without proxies (0) it is the socket's address. Login throttling (django-axes) and the API's rate
limit both count by it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.QUANTWEB_TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if proxies <= 0 or not forwarded:
        return remote
    # fewer entries than proxies: the request skipped a proxy; the leftmost is the best we have
    return forwarded[-min(proxies, len(forwarded))]
