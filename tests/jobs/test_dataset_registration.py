"""Archives above ``QUANTWEB_ARCHIVE_INLINE_MAX`` are registered by a real RQ worker, not in the request: the
dataset page says registering… N%, the worker extracts and detects, and a bad archive ends failed with the
message the inline path gives and nothing left on disk."""

from __future__ import annotations

import zipfile
from pathlib import Path

import django_rq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from support.files import write_image_folder, zip_folder
from support.workers import WorkerPool, purge_queue

from conversions.models import Dataset

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKER_TIMEOUT = 120


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUANTWEB_ARCHIVE_INLINE_MAX = 0  # every archive goes to the worker
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def queue(settings):
    q = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(q)
    yield q
    purge_queue(q)


@pytest.fixture
def workers(tmp_path):
    pool = WorkerPool(tmp_path)
    yield pool
    pool.close()


def _work(workers: WorkerPool) -> None:
    """One burst worker: it takes what is queued, then exits."""
    proc = workers.start(burst=True)
    assert proc.wait(timeout=WORKER_TIMEOUT) == 0, workers.log_path(0).read_text()[-3000:]


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _upload(client, name: str, archive_name: str, data: bytes):
    return client.post(reverse("conversions:dataset_new"), {
        "name": name, "archive": SimpleUploadedFile(archive_name, data), "dataset_type": "auto",
    })  # fmt: skip


def test_a_large_archive_is_registered_by_a_worker_with_its_images_counted(ana, media, queue, workers, tmp_path):
    archive = zip_folder(write_image_folder(tmp_path / "pets", per_class=6), tmp_path / "pets.zip")
    response = _upload(ana, "pets", "pets.zip", archive.read_bytes())
    dataset = Dataset.objects.get(name="pets")
    assert response.status_code == 302 and response["Location"] == dataset.get_absolute_url()
    assert dataset.status == Dataset.Status.REGISTERING and dataset.num_images == 0
    staged = _files_under(media / "datasets")
    assert [p.name for p in staged] == ["upload.zip"], "only the staging file is written in the request"
    page = ana.get(dataset.get_absolute_url()).content.decode()
    assert "registering…" in page and "0%" in page and 'http-equiv="refresh"' in page
    new_run = ana.get(reverse("conversions:run_new")).content.decode()
    assert f'value="{dataset.pk}"' not in new_run, "a dataset still registering is not offered for a run"
    assert "registering" in ana.get(reverse("conversions:datasets")).content.decode()

    _work(workers)

    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.READY, dataset.error
    assert dataset.progress == 1.0 and dataset.error == ""
    assert (dataset.num_images, dataset.num_classes, dataset.layout) == (12, 2, "imagefolder")
    assert dataset.structure["class_counts"] == {"cat": 6, "dog": 6}
    assert dataset.thumbnails and all((media / t["file"]).is_file() for t in dataset.thumbnails)
    assert not (dataset.upload_folder / "upload.zip").exists(), "the staging file goes once it is extracted"
    assert dataset.size_bytes == sum(p.stat().st_size for p in _files_under(dataset.upload_folder))
    page = ana.get(dataset.get_absolute_url()).content.decode()
    assert "registering…" not in page and "Convert with this dataset" in page
    assert f'value="{dataset.pk}"' in ana.get(reverse("conversions:run_new")).content.decode()


def test_a_truncated_archive_ends_failed_with_the_inline_message_and_nothing_on_disk(
    ana, media, queue, workers, tmp_path, settings
):
    whole = zip_folder(write_image_folder(tmp_path / "pets", per_class=6), tmp_path / "pets.zip").read_bytes()
    truncated = whole[: len(whole) * 2 // 3]

    settings.QUANTWEB_ARCHIVE_INLINE_MAX = 1 << 30  # the same bytes, in the request: the message to expect
    inline = _upload(ana, "inline", "pets.zip", truncated)
    assert inline.status_code == 200 and not Dataset.objects.filter(name="inline").exists()
    expected = inline.context["form"].errors["archive"][0]
    assert expected.startswith("Archive rejected:")

    settings.QUANTWEB_ARCHIVE_INLINE_MAX = 0
    _upload(ana, "broken", "pets.zip", truncated)
    dataset = Dataset.objects.get(name="broken")
    assert dataset.status == Dataset.Status.REGISTERING

    _work(workers)

    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.FAILED
    assert dataset.error == expected
    assert _files_under(media / "datasets") == [] and list((media / "datasets").iterdir()) == []
    assert not dataset.thumbnail_dir.exists()
    page = ana.get(dataset.get_absolute_url()).content.decode()
    assert "failed" in page and "Archive rejected:" in page and "Convert with this dataset" not in page
    assert f'value="{dataset.pk}"' not in ana.get(reverse("conversions:run_new")).content.decode()
    assert "failed" in ana.get(reverse("conversions:datasets")).content.decode()
    ana.post(reverse("conversions:dataset_delete", args=[dataset.pk]))
    assert not Dataset.objects.filter(name="broken").exists(), "a failed entry can be deleted to reuse its name"


def test_a_zip_whose_member_is_damaged_midway_fails_in_the_worker(ana, media, queue, workers, tmp_path):
    """A zip that opens (its directory is intact) but whose data is corrupt: extraction starts, writes files,
    then fails; the partial folder goes with the staging file."""
    folder = write_image_folder(tmp_path / "pets", per_class=6)
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*.jpg")):
            zf.write(path, str(path.relative_to(folder.parent)))
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        last = zf.infolist()[-1]
    start = last.header_offset + 30 + len(last.filename.encode()) + 8
    data[start : start + 64] = bytes(64)  # the last member's compressed bytes: a CRC or inflate error
    _upload(ana, "bad", "bad.zip", bytes(data))

    _work(workers)

    dataset = Dataset.objects.get(name="bad")
    assert dataset.status == Dataset.Status.FAILED, dataset.error
    assert "Archive rejected: the archive is damaged or truncated" in dataset.error
    assert list((media / "datasets").iterdir()) == []
