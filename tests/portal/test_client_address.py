"""Login throttling and the API rate limit count the real client behind the trusted proxies, over real HTTP,
in the Redis cache every web process shares; addresses a client writes into X-Forwarded-For are not believed."""

from __future__ import annotations

import pytest
import redis
import requests
from django.conf import settings
from support.portal_fixtures import page_session

from conversions.api.site import api
from conversions.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


def _login(base: str, forwarded_for: str, password: str) -> requests.Response:
    page = page_session(base)
    return page.post(f"{base}/accounts/login/", timeout=30, allow_redirects=False,
                     data={"csrfmiddlewaretoken": page.csrf, "username": "ana", "password": password},
                     headers={"X-Forwarded-For": forwarded_for})  # fmt: skip


def _shared_keys(pattern: str) -> list[bytes]:
    """Keys of this session's cache prefix, read by a client of its own (as another web process would)."""
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    return redis.Redis.from_url(settings.REDIS_URL).keys(f"{prefix}*{pattern}*")


@pytest.fixture
def one_proxy(settings):
    settings.QUANTWEB_TRUSTED_PROXIES = 1
    yield
    from django.core.cache import cache

    cache.clear()  # only this session's prefix


def test_login_lockout_counts_the_address_the_proxy_saw_not_what_the_client_wrote(live_server, one_proxy,
                                                                                   django_user_model):  # fmt: skip
    django_user_model.objects.create_user("ana", password="right-password")
    statuses = [_login(live_server.url, f"203.0.113.{i}, 10.0.0.1", "wrong").status_code
                for i in range(settings.AXES_FAILURE_LIMIT)]  # fmt: skip
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429], "spoofed entries changed the address"
    assert _login(live_server.url, "198.51.100.7, 10.0.0.1", "right-password").status_code == 429
    assert _shared_keys("axes"), "the failures are counted in the shared Redis cache"
    elsewhere = _login(live_server.url, "10.0.0.2", "right-password")
    assert elsewhere.status_code == 302, "another client of the same user is not locked out"


def test_the_api_rate_limit_is_counted_in_the_shared_cache(live_server, one_proxy, django_user_model, monkeypatch):
    throttle = api.throttle[0]
    monkeypatch.setattr(throttle, "num_requests", 3)
    token = ApiToken.issue(django_user_model.objects.create_user("ana", password="pw"), name="ci")[1]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    statuses = [session.get(f"{live_server.url}/api/v1/datasets/", timeout=30).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert _shared_keys("throttle_")
