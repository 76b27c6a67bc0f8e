"""Every bad archive is a worded 400 over real HTTP, on the upload page (a form error) and on the API (JSON),
with nothing left on disk; an unexpected error in the API is JSON too, never Django's HTML page."""

from __future__ import annotations

import html
import logging

import pytest
import requests
from support.bad_zips import BAD_ZIPS
from support.portal_fixtures import page_session

from conversions.models import Dataset

pytestmark = pytest.mark.django_db(transaction=True)


def _nothing_left(media) -> bool:
    folder = media / "datasets"
    return not folder.exists() or not any(folder.rglob("*"))


@pytest.mark.parametrize("kind", BAD_ZIPS)
def test_a_bad_zip_is_a_json_400_naming_the_archive_field(api_as, alice, media, kind):
    make, words = BAD_ZIPS[kind]
    response = api_as(alice).post("/datasets/", data={"name": "photos"}, files={"archive": ("p.zip", make())})
    assert response.status_code == 400, response.text[:500]
    body = response.json()
    assert body["field"] == "archive" and words in body["error"], body
    assert not Dataset.objects.exists() and _nothing_left(media)


@pytest.mark.parametrize("kind", BAD_ZIPS)
def test_a_bad_zip_is_a_form_error_on_the_upload_page(live_server, media, alice, kind):
    make, words = BAD_ZIPS[kind]
    page = page_session(live_server.url, alice)
    response = page.post(f"{live_server.url}/datasets/new/", timeout=60,
                         data={"csrfmiddlewaretoken": page.csrf, "name": "photos", "dataset_type": "auto"},
                         files={"archive": ("p.zip", make())})  # fmt: skip
    assert response.status_code == 200, response.text[:500]
    assert "Archive rejected: " in html.unescape(response.text) and words in html.unescape(response.text)
    assert not Dataset.objects.exists() and _nothing_left(media)


def test_an_unexpected_error_in_the_api_answers_json_and_is_logged(api_as, alice, media, monkeypatch, caplog):
    monkeypatch.setattr(logging.getLogger("quantweb"), "propagate", True)  # to caplog, not only the console
    from conversions.api import datasets

    def broken(request, dataset):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(datasets, "dataset_out", broken)
    pets = Dataset.objects.create(name="pets", path="x", created_by=alice)
    response = api_as(alice).get(f"/datasets/{pets.pk}/")
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "The server failed on this request (ZeroDivisionError); it was logged. "
                                        "Try again, and tell staff if it persists.", "field": ""}  # fmt: skip
    assert any("ZeroDivisionError: a bug" in (r.exc_text or "") for r in caplog.records)


def test_an_anonymous_api_call_is_still_a_json_401(live_server):
    response = requests.get(f"{live_server.url}/api/v1/datasets/", timeout=30)
    assert response.status_code == 401 and response.json()["error"].startswith("Send a valid API token")
