"""API tokens: made on /tokens/ or by manage.py api_token, stored hashed, revoked to 401."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from conversions.models import ApiToken

from .conftest import Client

pytestmark = pytest.mark.django_db(transaction=True)


def _signed_in(live_server, username: str, password: str) -> requests.Session:
    session = requests.Session()
    login = live_server.url + "/accounts/login/"
    page = session.get(login, timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(login, data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
                            headers={"Referer": login}, timeout=30)  # fmt: skip
    assert response.url.rstrip("/") == live_server.url, "signed in and sent home"
    return session


def _csrf(session: requests.Session, page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_a_token_made_on_the_tokens_page_works_until_it_is_revoked(live_server, media, alice):
    browser = _signed_in(live_server, "alice", "alice-pw")
    tokens_url = live_server.url + "/tokens/"
    page = browser.get(tokens_url, timeout=30).text
    created = browser.post(tokens_url, data={"name": "nightly CI", "csrfmiddlewaretoken": _csrf(browser, page)},
                           headers={"Referer": tokens_url}, timeout=30)  # fmt: skip
    assert created.status_code == 200
    token = re.search(r'<pre class="mono" id="new-token">([^<]+)</pre>', created.text).group(1)

    row = ApiToken.objects.get(user=alice)
    assert row.name == "nightly CI" and token.startswith(row.prefix)
    assert row.digest == hashlib.sha256(token.encode()).hexdigest(), "only the digest is stored"
    assert token not in {row.prefix, row.digest, row.name}

    api = Client(live_server.url, token)
    assert api.get("/runs/").status_code == 200
    listing = browser.get(tokens_url, timeout=30).text
    assert token not in listing, "a token is shown once"
    assert f"{row.prefix}…" in listing

    revoke_url = f"{tokens_url}{row.pk}/revoke/"
    browser.post(revoke_url, data={"csrfmiddlewaretoken": _csrf(browser, listing)}, headers={"Referer": tokens_url},
                 timeout=30)  # fmt: skip
    response = api.get("/runs/")
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


def test_a_user_cannot_revoke_another_users_token(live_server, media, alice, bob):
    row, token = ApiToken.issue(alice)
    browser = _signed_in(live_server, "bob", "bob-pw")
    page = browser.get(live_server.url + "/tokens/", timeout=30).text
    response = browser.post(f"{live_server.url}/tokens/{row.pk}/revoke/", data={"csrfmiddlewaretoken": _csrf(browser, page)},
                            headers={"Referer": live_server.url + "/tokens/"}, timeout=30)  # fmt: skip
    assert response.status_code == 404
    assert Client(live_server.url, token).get("/runs/").status_code == 200


def test_the_api_token_command_prints_a_token_and_revokes_them(live_server, media, alice):
    out = io.StringIO()
    call_command("api_token", "alice", stdout=out)
    token = out.getvalue().strip()
    api = Client(live_server.url, token)
    assert api.get("/checkpoints/").status_code == 200

    out = io.StringIO()
    call_command("api_token", "alice", "--revoke", stdout=out)
    assert "Revoked 1 token of alice" in out.getvalue()
    assert api.get("/checkpoints/").status_code == 401
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("api_token", "nobody")


@pytest.mark.parametrize("header", [None, "Bearer qw_not-a-real-token", "Bearer ", "Token abc", "Basic YTpi"])
def test_requests_without_a_valid_token_answer_401(live_server, media, header):
    headers = {"Authorization": header} if header is not None else {}
    for path in ("/runs/", "/checkpoints/", "/datasets/", "/runs/1/"):
        response = requests.get(f"{live_server.url}/api/v1{path}", headers=headers, timeout=30)
        assert response.status_code == 401, path
        assert set(response.json()) == {"error", "field"}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    response = requests.post(f"{live_server.url}/api/v1/runs/", json={"checkpoint": 1}, headers=headers, timeout=30)
    assert response.status_code == 401


def test_a_deactivated_users_token_answers_401(api_as, alice):
    api = api_as(alice)
    alice.is_active = False
    alice.save()
    assert api.get("/runs/").status_code == 401


def test_staff_revoke_tokens_in_the_admin(admin_client, alice, live_server, media):
    row, token = ApiToken.issue(alice, name="old laptop")
    page = admin_client.get("/admin/conversions/apitoken/")
    assert page.status_code == 200 and row.prefix in page.content.decode() and token not in page.content.decode()
    admin_client.post("/admin/conversions/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.revoked is not None
    assert Client(live_server.url, token).get("/runs/").status_code == 401
