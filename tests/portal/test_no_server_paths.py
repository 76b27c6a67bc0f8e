"""A non-staff user sees no absolute server path anywhere, over real HTTP: after a real int8 run of a
checkpoint and a dataset stored under MEDIA_ROOT, no page, status poll, API answer or downloaded report holds
MEDIA_ROOT or the repository's folder. Staff still see the full paths."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from support.files import register_tiny, staff_member
from support.portal_fixtures import page_session

from conversions.models import ApiToken, ConversionRun
from conversions.run_settings import RunSettings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def finished_run(media, django_user_model):
    ana = django_user_model.objects.create_user("ana", password="pw")
    ckpt, dataset = register_tiny(media / "datasets", user=ana)
    config = RunSettings(("int8",), num_calib_samples=8, num_eval_samples=8).config_for(ckpt, dataset)
    run = ConversionRun.launch(config, ana, checkpoint=ckpt, dataset=dataset, immediate=True)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def _server_paths(body: str) -> list[str]:
    secrets = {str(settings.MEDIA_ROOT), str(settings.MEDIA_ROOT.resolve()), str(settings.BASE_DIR)}
    return [s for s in secrets if s in body]


def test_no_page_or_api_answer_shows_a_non_staff_user_a_server_path(live_server, finished_run):
    run, ana = finished_run, finished_run.created_by
    assert str(settings.MEDIA_ROOT) in str(run.report) + run.log, "the run records server paths to hide"
    pages = page_session(live_server.url, ana)
    artifact = run.artifacts.first()
    for path in ("/", run.get_absolute_url(), f"/runs/{run.pk}/status.json", f"/runs/compare/?ids={run.pk}",
                 run.dataset.get_absolute_url(), "/datasets/", "/datasets/new/", run.checkpoint.get_absolute_url(),
                 "/checkpoints/", f"/runs/new/?checkpoint={run.checkpoint_id}"):  # fmt: skip
        response = pages.get(live_server.url + path, timeout=60)
        assert response.status_code == 200, path
        assert _server_paths(response.text) == [], path

    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {ApiToken.issue(ana, name='ci')[1]}"
    base = f"{live_server.url}/api/v1"
    for path in (f"/runs/{run.pk}/", "/runs/", f"/runs/{run.pk}/report.json", f"/datasets/{run.dataset_id}/",
                 "/datasets/", f"/checkpoints/{run.checkpoint_id}/", "/checkpoints/"):  # fmt: skip
        response = api.get(base + path, timeout=60)
        assert response.status_code == 200, path
        assert _server_paths(response.text) == [], path
    report = api.get(f"{base}/runs/{run.pk}/report.json", timeout=60)
    assert report.headers["Content-Disposition"] == f'attachment; filename="report-r{run.pk}.json"'
    assert report.json()["variants"][0]["variant"] == "int8"
    tflite = api.get(f"{base}/artifacts/{artifact.pk}/{artifact.filename}", timeout=60)
    assert tflite.status_code == 200 and _server_paths(tflite.content.decode("latin-1")) == []

    staff = requests.Session()
    staff.headers["Authorization"] = f"Bearer {ApiToken.issue(staff_member(), name='ci')[1]}"
    assert _server_paths(staff.get(f"{base}/runs/{run.pk}/report.json", timeout=60).text), "staff see full paths"
