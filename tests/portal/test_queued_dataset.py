"""A large archive's registration is queued: the request still runs the up-front checks, and a dataset that is
still registering cannot be detected again, deleted or converted with."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from support.files import write_image_folder, zip_folder

from conversions.models import Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUANTWEB_ARCHIVE_INLINE_MAX = 0
    return Path(settings.MEDIA_ROOT)


def _post(client, tmp_path, name="pets"):
    archive = zip_folder(write_image_folder(tmp_path / "pets", per_class=2), tmp_path / f"{name}.zip")
    return client.post(reverse("conversions:dataset_new"), {
        "name": name, "archive": SimpleUploadedFile(f"{name}.zip", archive.read_bytes()), "dataset_type": "auto",
    })  # fmt: skip


def test_a_used_up_quota_is_refused_in_the_request_with_nothing_on_disk(ana, media, settings, tmp_path):
    settings.QUANTWEB_USER_UPLOAD_QUOTA = 0
    response = _post(ana, tmp_path)
    assert response.status_code == 200
    assert "what is left of your upload quota" in response.context["form"].errors["archive"][0]
    assert not Dataset.objects.exists()
    assert list((media / "datasets").iterdir()) == []


def test_a_registering_dataset_is_not_detected_deleted_or_offered(ana, media, tmp_path):
    assert _post(ana, tmp_path).status_code == 302
    dataset = Dataset.objects.get(name="pets")
    assert dataset.status == Dataset.Status.REGISTERING
    page = ana.post(reverse("conversions:dataset_detect", args=[dataset.pk]), follow=True).content.decode()
    assert "only a ready dataset can be detected again" in page
    page = ana.post(reverse("conversions:dataset_delete", args=[dataset.pk]), follow=True).content.decode()
    assert "still being registered" in page and Dataset.objects.filter(pk=dataset.pk).exists()
    response = ana.post(reverse("conversions:run_new"), {"dataset": dataset.pk, "variants": ["int8"]})
    assert response.status_code == 200 and "dataset" in response.context["form"].errors


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_extraction_reports_growing_progress_up_to_the_whole_archive(media, tmp_path, suffix):
    import tarfile

    from conversions.uploads import extract_archive

    folder = write_image_folder(tmp_path / "pets", per_class=5)
    archive = tmp_path / f"pets{suffix}"
    if suffix == ".zip":
        zip_folder(folder, archive)
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(folder, arcname="pets")
    seen: list[float] = []
    with open(archive, "rb") as f:
        extract_archive(f, archive.name, media / "out", size=archive.stat().st_size, progress=seen.append)
    assert len(seen) == 10, "one report per file written (each smaller than a chunk)"
    assert seen == sorted(seen) and 0 < seen[0] < seen[-1]
    assert seen[-1] == 1.0 if suffix == ".zip" else seen[-1] > 0.5
