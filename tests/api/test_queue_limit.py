"""A user may have at most QUANTWEB_MAX_QUEUED_RUNS runs queued or running, over real HTTP: the API answers a
worded 400 (a new run) or 429 (a re-run), the new-run page says why; once one ends, a new run goes through."""

from __future__ import annotations

import pytest
from support.portal_fixtures import page_session

from conversions.models import Checkpoint, ConversionRun

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = "runs queued or running, the most one person may have (QUANTWEB_MAX_QUEUED_RUNS=2)"


@pytest.fixture
def two_waiting(settings, alice):
    settings.QUANTWEB_MAX_QUEUED_RUNS = 2
    ckpt = Checkpoint.objects.create(name="lite", version=1, architecture="efficientnet-lite0",
                                     input_shape=[1, 3, 224, 224], created_by=alice)  # fmt: skip
    queued = ConversionRun.objects.create(checkpoint=ckpt, variants="float16", model_name="lite", created_by=alice)
    ConversionRun.objects.create(checkpoint=ckpt, variants="float16", model_name="lite", created_by=alice,
                                 status=ConversionRun.Status.RUNNING)  # fmt: skip
    return ckpt, queued


def test_a_third_waiting_run_is_refused_in_the_api_until_one_ends(api_as, alice, bob, two_waiting):
    ckpt, queued = two_waiting
    api = api_as(alice)
    new = {"checkpoint": ckpt.pk, "variants": ["float16"]}
    response = api.post("/runs/", json=new)
    assert response.status_code == 400 and response.json() == {"error": f"You have 2 {WORDS}; wait for one to "
                                                               "finish or cancel one.", "field": ""}  # fmt: skip
    rerun = api.post(f"/runs/{queued.pk}/rerun/")
    assert rerun.status_code == 429 and WORDS in rerun.json()["error"]
    assert ConversionRun.objects.count() == 2
    assert api_as(bob).post("/runs/", json=new).status_code == 201, "the limit is per user"

    assert api.post(f"/runs/{queued.pk}/cancel/").status_code == 200
    assert api.post("/runs/", json=new).status_code == 201


def test_the_new_run_page_says_why_it_refuses(live_server, alice, two_waiting, media):
    ckpt, _ = two_waiting
    page = page_session(live_server.url, alice)
    response = page.post(f"{live_server.url}/runs/new/", timeout=60, data={
        "csrfmiddlewaretoken": page.csrf, "checkpoint": ckpt.pk, "variants": "float16", "num_calib_samples": 10,
        "seed": 0,
    })  # fmt: skip
    assert response.status_code == 200 and WORDS in response.text
    assert ConversionRun.objects.count() == 2
