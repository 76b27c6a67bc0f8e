"""``POST /api/v1/datasets/`` with an archive above ``QUANTWEB_ARCHIVE_INLINE_MAX``: 202 with the row
registering, then a real RQ worker makes it ready (the same row, followed at its ``url``)."""

from __future__ import annotations

import django_rq
import pytest
from support.files import write_image_folder, zip_folder
from support.workers import WorkerPool, purge_queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_queued_registration_answers_202_and_becomes_ready(api_as, alice, settings, tmp_path):
    settings.QUANTWEB_ARCHIVE_INLINE_MAX = 0
    queue = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(queue)
    archive = zip_folder(write_image_folder(tmp_path / "pets", per_class=4), tmp_path / "pets.zip")
    api = api_as(alice)
    with open(archive, "rb") as f:
        response = api.post("/datasets/", data={"name": "pets"}, files={"archive": ("pets.zip", f)})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["status"], body["images"], body["error"]) == ("registering", 0, "")
    pool = WorkerPool(tmp_path)
    try:
        assert pool.start(burst=True).wait(timeout=120) == 0, pool.log_path(0).read_text()[-3000:]
    finally:
        pool.close()
        purge_queue(queue)
    shown = api.get(body["url"]).json()
    assert (shown["status"], shown["images"], shown["classes"], shown["progress"]) == ("ready", 8, 2, 1.0)


def test_a_small_archive_is_still_registered_in_the_request(api_as, alice, tmp_path):
    archive = zip_folder(write_image_folder(tmp_path / "pets", per_class=4), tmp_path / "pets.zip")
    with open(archive, "rb") as f:
        response = api_as(alice).post("/datasets/", data={"name": "pets"}, files={"archive": ("pets.zip", f)})
    assert response.status_code == 201, response.text
    assert (response.json()["status"], response.json()["images"]) == ("ready", 8)
