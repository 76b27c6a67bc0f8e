"""Who may see what: login for everything, staff for the admin, runs and artifacts read-only there."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from conversions.models import Artifact, Checkpoint, ConversionRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    ckpt = Checkpoint.objects.create(name="m", version=1, architecture="efficientnet-lite0", input_shape=[1, 3, 8, 8])
    run = ConversionRun.objects.create(checkpoint=ckpt, variants="int8", model_name="m", model_version=1,
                                       status="succeeded")
    out = tmp_path / "artifacts" / "m-v1-int8-r1.tflite"
    out.parent.mkdir()
    out.write_bytes(b"x")
    Artifact.record(run, "int8", out, sha256="a" * 64, size_bytes=1)
    return run


@pytest.mark.parametrize("name,args", [
    ("conversions:history", []), ("conversions:run_new", []), ("conversions:datasets", []),
    ("conversions:dataset_new", []), ("conversions:checkpoints", []), ("conversions:checkpoint_new", []),
    ("conversions:run", ["RUN"]), ("conversions:run_status", ["RUN"]), ("conversions:download", ["ART", "FILE"]),
    ("conversions:run_compare", []),
])  # fmt: skip
def test_anonymous_users_are_sent_to_log_in(client, run, name, args):
    artifact = run.artifacts.get()
    values = {"RUN": run.pk, "ART": artifact.pk, "FILE": artifact.filename}
    url = reverse(name, args=[values[a] for a in args])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_login_page_is_open(client):
    assert client.get(reverse("login")).status_code == 200


def test_non_staff_users_are_kept_out_of_the_admin(client, django_user_model, run):
    client.force_login(django_user_model.objects.create_user("bob", password="pw"))
    assert client.get(reverse("conversions:history")).status_code == 200
    response = client.get(reverse("admin:conversions_conversionrun_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_shows_runs_and_artifacts_read_only(admin_client, run):
    assert admin_client.get(reverse("admin:conversions_conversionrun_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:conversions_conversionrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.post(reverse("admin:conversions_conversionrun_change", args=[run.pk]),
                             {"status": "failed"}).status_code == 403
    assert admin_client.get(reverse("admin:conversions_conversionrun_add")).status_code == 403
    assert admin_client.get(reverse("admin:conversions_conversionrun_delete", args=[run.pk])).status_code == 403
    artifact = run.artifacts.get()
    assert admin_client.get(reverse("admin:conversions_artifact_delete", args=[artifact.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_admin_lists_every_model(admin_client):
    for model in ("dataset", "checkpoint", "conversionrun", "artifact"):
        assert admin_client.get(reverse(f"admin:conversions_{model}_changelist")).status_code == 200


def test_csrf_protection_is_on(django_user_model, run):
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("eve", password="pw"))
    response = client.post(reverse("conversions:run_cancel", args=[run.pk]))
    assert response.status_code == 403


def test_downloads_serve_the_versioned_filename(client, django_user_model, run):
    client.force_login(django_user_model.objects.create_user("bob", password="pw"))
    artifact = run.artifacts.get()
    response = client.get(artifact.get_absolute_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"x"
    assert f'filename="{artifact.filename}"' in response["Content-Disposition"]
    assert response["X-Checksum-SHA256"] == "a" * 64
