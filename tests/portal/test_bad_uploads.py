"""Bad archives and hostile images: each is a form error, never a 500, and leaves nothing on disk."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversions.models import Dataset

pytestmark = pytest.mark.django_db


def _jpeg(seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG")
    return buf.getvalue()


def _images(n: int = 4) -> dict[str, bytes]:
    return {f"cat/{i}.jpg": _jpeg(i) for i in range(n)} | {f"dog/{i}.jpg": _jpeg(10 + i) for i in range(n)}


def _zip(entries: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bomb_png(width: int = 50000, height: int = 50000) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, in a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _bad_crc_zip() -> bytes:
    data = bytearray(_zip(list(_images(2).items()), compression=zipfile.ZIP_STORED))
    offset = data.find(b"\xff\xd8")  # inside the first JPEG's stored bytes
    data[offset + 40] ^= 0xFF
    return bytes(data)


def _post(client, filename: str, data: bytes, name: str = "photos"):
    return client.post(reverse("conversions:dataset_new"), {
        "name": name, "archive": SimpleUploadedFile(filename, data), "dataset_type": "auto",
    })  # fmt: skip


def _left_on_disk(media: Path) -> list[Path]:
    return [p for p in (media / "datasets").rglob("*")] if (media / "datasets").exists() else []


BAD_ARCHIVES = {
    "duplicate member": ("d.zip", lambda: _zip([("cat/a.jpg", _jpeg(0)), ("cat/a.jpg", _jpeg(1))]), "appears twice"),
    "truncated tar.gz": ("t.tar.gz", lambda: _tar_gz(_images())[:600], "damaged or truncated"),
    "bad CRC": ("c.zip", _bad_crc_zip, "damaged or truncated"),
    "300-character name": ("n.zip", lambda: _zip([("cat/" + "x" * 300 + ".jpg", _jpeg(0))]), "too long"),
    "zip bomb": ("z.zip", lambda: _zip([("cat/a.jpg", _jpeg(0)), ("zeros.bin", b"\0" * (64 * 1024 * 1024))]),
                 "times the archive"),
}  # fmt: skip


@pytest.mark.parametrize("kind", BAD_ARCHIVES)
def test_a_bad_archive_is_a_form_error_with_nothing_left_on_disk(ana, media, kind):
    filename, make, expected = BAD_ARCHIVES[kind]
    response = _post(ana, filename, make())
    assert response.status_code == 200
    assert "Archive rejected" in response.content.decode() and expected in response.content.decode()
    assert not Dataset.objects.exists()
    assert _left_on_disk(media) == []


def test_a_member_with_a_colon_is_an_ordinary_folder_name(ana, media):
    entries = [(f"cls:1/{i}.jpg", _jpeg(i)) for i in range(3)] + [(f"cls:2/{i}.jpg", _jpeg(9 + i)) for i in range(3)]
    response = _post(ana, "colon.zip", _zip(entries))
    assert response.status_code == 302
    assert sorted(Dataset.objects.get().structure["classes"]) == ["cls:1", "cls:2"]


def test_the_upload_quota_is_kept(ana, media, settings):
    archive = _zip(list(_images().items()))
    settings.QUANTWEB_USER_UPLOAD_QUOTA = 2 * sum(len(v) for v in _images().values()) - 1
    assert _post(ana, "a.zip", archive, name="first").status_code == 302
    response = _post(ana, "a.zip", archive, name="second")
    assert "upload quota" in response.content.decode()
    assert Dataset.objects.count() == 1 and len(list((media / "datasets").iterdir())) == 1


def test_too_little_free_disk_refuses_before_extracting(ana, media, settings):
    settings.QUANTWEB_MIN_FREE_DISK = 1 << 60
    response = _post(ana, "a.zip", _zip(list(_images().items())))
    assert "free disk space" in response.content.decode()
    assert _left_on_disk(media) == []


def test_a_decompression_bomb_image_is_skipped_and_counted_not_a_500(ana, media):
    entries = list(_images(2).items()) + [("cat/bomb.png", bomb_png())]
    response = _post(ana, "bomb.zip", _zip(entries))
    assert response.status_code == 302
    dataset = Dataset.objects.get()
    skipped = dataset.structure["thumbnails_skipped"]
    assert [s["source"] for s in skipped] == ["cat/bomb.png"] and "decompression bomb" in skipped[0]["reason"]
    assert dataset.num_skipped >= 1
    assert ana.get(dataset.get_absolute_url()).status_code == 200
    again = ana.post(reverse("conversions:dataset_detect", args=[dataset.pk]))
    assert again.status_code == 302


@pytest.mark.parametrize("query", [
    "ids=99999999999999999999999", "ids=%C2%B2", "ids=1,%00", "ids=-1", "ids=9223372036854775808",
])  # fmt: skip
def test_compare_ids_that_are_not_run_ids_are_ignored_with_a_note(ana, query):
    response = ana.get(reverse("conversions:run_compare") + "?" + query)
    assert response.status_code == 200


@pytest.mark.parametrize("query", [
    "status=%00", "model=" + "m" * 5000, "page=99999999999999999999", "page=%C2%B2", "user=%00x",
    "selected=99999999999999999999999",
])  # fmt: skip
def test_history_query_parameters_never_answer_500(ana, query):
    assert ana.get(reverse("conversions:history") + "?" + query).status_code == 200


@pytest.mark.parametrize("query", ["checkpoint=99999999999999999999999", "dataset=%C2%B2", "checkpoint=abc"])
def test_new_run_query_parameters_never_answer_500(ana, query):
    assert ana.get(reverse("conversions:run_new") + "?" + query).status_code == 200
