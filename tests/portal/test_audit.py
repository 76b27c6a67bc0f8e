"""Audit: a version's files never change, trust decisions are logged, runs say which bytes they converted."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.base import ContentFile
from django.urls import reverse
from support.files import staff_member

from conversions.engine.errors import CheckpointError
from conversions.models import Checkpoint, ConversionRun, ImmutableError
from conversions.run_settings import RunSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def ckpt(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    ckpt = Checkpoint(name="m", version=1, architecture="subprocess:getoutput", input_shape=[1, 3, 8, 8])
    ckpt.save()
    ckpt.file.save("w.pth", ContentFile(b"weights"), save=False)
    ckpt.record_file_digest()
    ckpt.save()
    return ckpt


def test_a_versions_file_and_architecture_cannot_change(ckpt):
    ckpt.file.save("other.pth", ContentFile(b"other weights"), save=False)
    with pytest.raises(ImmutableError, match="upload a new version"):
        ckpt.save()
    ckpt = Checkpoint.objects.get(pk=ckpt.pk)
    ckpt.architecture = "os:system"
    with pytest.raises(ImmutableError):
        ckpt.save()


def test_the_admin_shows_a_versions_files_read_only(admin_client, ckpt):
    page = admin_client.get(reverse("admin:conversions_checkpoint_change", args=[ckpt.pk])).content.decode()
    assert 'type="file"' not in page and 'name="architecture"' not in page


def test_the_admin_trust_action_records_who_when_and_the_digest_and_logs_it(admin_client, ckpt, admin_user):
    response = admin_client.post(reverse("admin:conversions_checkpoint_changelist"),
                                 {"action": "mark_trusted", "_selected_action": [ckpt.pk]})  # fmt: skip
    assert response.status_code == 302
    ckpt.refresh_from_db()
    assert ckpt.trusted_by == admin_user and ckpt.trusted_at is not None
    assert ckpt.trusted_digest == ckpt.trust_digest() and ckpt.launchable
    entry = LogEntry.objects.get(object_id=str(ckpt.pk))
    assert entry.user == admin_user and ckpt.trusted_digest in entry.get_change_message()


def test_trust_is_for_staff_only(ckpt, django_user_model):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        ckpt.trust(django_user_model.objects.create_user("ana"))
    assert not Checkpoint.objects.get(pk=ckpt.pk).trusted


def test_a_run_records_the_bytes_it_loaded_and_refuses_a_file_changed_on_disk(ckpt):
    ckpt.trust(staff_member())
    Path(ckpt.file.path).chmod(0o644)
    Path(ckpt.file.path).write_bytes(b"swapped behind the portal's back")
    config = RunSettings(variants=("float16",)).config_for(ckpt, None)
    with pytest.raises(CheckpointError, match="changed since it was uploaded"):
        ConversionRun.launch(config, None, checkpoint=ckpt, immediate=True)
    run = ConversionRun.objects.get()
    assert run.status == "failed" and run.checkpoint_sha256 not in ("", ckpt.sha256)


def test_the_admin_shows_who_cancelled_a_run_and_what_it_re_ran(admin_client, ckpt, admin_user):
    first = ConversionRun.objects.create(checkpoint=ckpt, variants="float16", model_name="m", status="succeeded")
    again = ConversionRun.objects.create(checkpoint=ckpt, variants="float16", model_name="m", rerun_of=first,
                                         checkpoint_sha256=ckpt.sha256)  # fmt: skip
    assert again.cancel_by(admin_user)
    page = admin_client.get(reverse("admin:conversions_conversionrun_changelist")).content.decode()
    assert ckpt.sha256[:12] in page and f"run {first.pk} " in page
    detail = admin_client.get(reverse("admin:conversions_conversionrun_change", args=[again.pk])).content.decode()
    assert admin_user.username in detail
