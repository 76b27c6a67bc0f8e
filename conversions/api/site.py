"""The ``NinjaAPI`` of ``/api/v1/``: token auth on every endpoint, one error shape, a rate limit per user,
the OpenAPI document at ``openapi.json`` and the browsable docs at ``docs`` (for a token or a session)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from ninja import NinjaAPI
from ninja.throttling import AuthRateThrottle

from conversions.api import artifacts, checkpoints, datasets, errors, runs
from conversions.api.auth import BearerToken, docs_access
from conversions.api.links import NAMESPACE
from conversions.client_address import client_ip


class ClientRateThrottle(AuthRateThrottle):
    """Per token user; a request without one by the real client address (``client_ip``), in the shared cache."""

    def get_ident(self, request):
        return client_ip(request)


api = NinjaAPI(
    title="quantweb",
    version="1",
    description="Register checkpoints and datasets, launch conversions, fetch verified int8 .tflite files.",
    urls_namespace=NAMESPACE,
    auth=BearerToken(),
    throttle=[ClientRateThrottle(settings.QUANTWEB_API_RATE)],
    docs_decorator=docs_access,
)
errors.install(api)
api.add_router("/checkpoints/", checkpoints.router)
api.add_router("/datasets/", datasets.router)
api.add_router("/runs/", runs.router)
api.add_router("/artifacts/", artifacts.router)


def urls():
    """``api.urls`` with every view opened past ``LoginRequiredMiddleware``: a token, not a session,
    signs API requests in (the docs page keeps its own ``login_required``)."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        login_not_required(pattern.callback)
    return patterns, app_name, namespace
