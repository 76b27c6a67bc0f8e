"""The API over real HTTP: pytest-django's live server (a real socket, its own thread), ``requests`` as the
client, tokens made the way users make them."""

from __future__ import annotations

import pytest
import requests

from conversions.models import ApiToken


class Client:
    """``requests`` against ``/api/v1/`` with a bearer token (or none)."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.url(path), timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.session.post(self.url(path), timeout=60, **kw)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUANTWEB_RUN_HEARTBEAT_SECONDS = 2
    return settings.MEDIA_ROOT


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pw")


@pytest.fixture
def api_as(live_server, media):
    """``api_as(user)``: a client signed in with a new token of ``user``; ``api_as(None)``: no token."""

    def make(user) -> Client:
        token = ApiToken.issue(user, name="test")[1] if user is not None else None
        return Client(live_server.url, token)

    return make
