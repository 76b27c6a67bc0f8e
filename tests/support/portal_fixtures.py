"""A real benchmark report for the portal's run and compare pages (one conversion per test session)."""

from __future__ import annotations

import pytest

from support.runs import benchmark_report


@pytest.fixture(scope="session")
def portal_report(tmp_path_factory) -> dict:
    """Five variants at 1 and 2 threads, labeled accuracy, and int8 wrong on every green image."""
    return benchmark_report(tmp_path_factory.mktemp("portal-report"))


@pytest.fixture
def media(settings, tmp_path):
    """MEDIA_ROOT in the test's own folder: uploads, thumbnails and artifacts land there, not under var/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ana(client, django_user_model):
    """A signed-in team member without staff rights."""
    client.force_login(django_user_model.objects.create_user("ana", password="pw"))
    return client


def page_session(base_url: str, user=None):
    """A ``requests`` session against the live server's pages: signed in as ``user`` (a session cookie made
    the way a login makes one) or anonymous, with the CSRF cookie a browser gets from the login page; its
    ``csrf`` attribute is the token to send in a form."""
    import requests
    from django.conf import settings
    from django.test import Client

    session = requests.Session()
    if user is not None:
        django_client = Client()
        django_client.force_login(user)
        session.cookies.set(settings.SESSION_COOKIE_NAME, django_client.cookies[settings.SESSION_COOKIE_NAME].value)
    session.get(f"{base_url}/accounts/login/", timeout=30)
    session.csrf = session.cookies["csrftoken"]
    session.headers["Referer"] = base_url + "/"
    return session
