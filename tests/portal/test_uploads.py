"""Uploads: archives are extracted safely or rejected whole; checkpoints are stored with their digest."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from support.files import write_image_folder, zip_folder

from conversions.models import Checkpoint, ConversionRun, Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ana", password="pw"))
    return client


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _tar(add) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        add(tf)
    return buf.getvalue()


def _tar_with_link(kind: bytes):
    def add(tf: tarfile.TarFile) -> None:
        data = _jpeg()
        info = tarfile.TarInfo("photos/cat/a.jpg")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("photos/cat/evil.jpg")
        link.type = kind
        link.linkname = "/etc/passwd"
        tf.addfile(link)

    return add


def _post_archive(client, name: str, data: bytes, filename: str):
    return client.post(reverse("conversions:dataset_new"), {
        "name": name, "archive": SimpleUploadedFile(filename, data), "dataset_type": "auto",
    })  # fmt: skip


def _assert_rejected(response, media: Path, words: str) -> None:
    assert response.status_code == 200, "the form is shown again with the error"
    assert words in response.content.decode()
    assert not Dataset.objects.exists()
    leftovers = [p for p in (media / "datasets").rglob("*")] if (media / "datasets").exists() else []
    assert leftovers == [], "a rejected archive leaves nothing behind"


@pytest.mark.parametrize("entries,words", [
    ({"../escape.jpg": b"x"}, "outside the dataset folder"),
    ({"photos/../../escape.jpg": b"x"}, "outside the dataset folder"),
    ({"/etc/cron.d/evil": b"x"}, "absolute paths are not allowed"),
])  # fmt: skip
def test_zip_with_path_traversal_is_rejected(user_client, media, entries, words):
    data = _zip({"photos/ok/a.jpg": _jpeg(), **entries})
    _assert_rejected(_post_archive(user_client, "evil", data, "evil.zip"), media, words)
    assert not (media.parent / "escape.jpg").exists()


def test_zip_with_a_symlink_is_rejected(user_client, media):
    data = _zip({"photos/ok/a.jpg": _jpeg()}, symlinks={"photos/ok/b.jpg": "/etc/passwd"})
    _assert_rejected(_post_archive(user_client, "evil", data, "evil.zip"), media, "links are not allowed")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_with_a_link_is_rejected(user_client, media, kind):
    data = _tar(_tar_with_link(kind))
    _assert_rejected(_post_archive(user_client, "evil", data, "evil.tar.gz"), media, "links are not allowed")


def test_archive_over_the_file_count_limit_is_rejected(user_client, media, settings):
    settings.QUANTWEB_ARCHIVE_MAX_FILES = 3
    data = _zip({f"photos/c/{i}.jpg": _jpeg() for i in range(5)})
    _assert_rejected(_post_archive(user_client, "many", data, "many.zip"), media, "more than 3 files")


def test_archive_over_the_size_limit_is_rejected(user_client, media, settings):
    settings.QUANTWEB_ARCHIVE_MAX_BYTES = 10_000
    settings.QUANTWEB_ARCHIVE_MAX_RATIO = 10**6  # the expanded-size limit, not the ratio, is what refuses
    data = _zip({"photos/c/big.jpg": b"\0" * 50_000})  # compresses to almost nothing: a zip bomb in small
    assert len(data) < 10_000
    _assert_rejected(_post_archive(user_client, "bomb", data, "bomb.zip"), media, "more than the limit of")


def test_upload_over_the_size_limit_is_refused_while_it_streams(user_client, media, settings):
    settings.QUANTWEB_MAX_DATASET_UPLOAD = 100
    data = _zip({"photos/c/a.jpg": _jpeg()})
    response = _post_archive(user_client, "big", data, "big.zip")
    assert response.status_code == 413
    assert "big.zip is larger than 0 MB, the limit for &#x27;archive&#x27;" in response.content.decode()
    assert not Dataset.objects.exists()


def test_a_safe_archive_is_extracted_detected_and_thumbnailed(user_client, media, tmp_path):
    folder = write_image_folder(tmp_path / "photos", classes=("cat", "dog", "fox"), per_class=4)
    (folder / "cat" / "notes.txt").write_text("not an image")
    data = zip_folder(folder, tmp_path / "photos.zip").read_bytes()
    response = _post_archive(user_client, "pets", data, "photos.zip")
    assert response.status_code == 302
    ds = Dataset.objects.get(name="pets")
    assert ds.source == "upload" and ds.archive_name == "photos.zip"
    assert ds.folder.is_dir() and ds.folder.resolve().is_relative_to(media.resolve())
    assert (ds.layout, ds.num_images, ds.num_classes, ds.num_skipped) == ("imagefolder", 12, 3, 1)
    assert ds.structure["class_counts"] == {"cat": 4, "dog": 4, "fox": 4}
    assert len(ds.thumbnails) == 8
    page = user_client.get(ds.get_absolute_url())
    assert b"fox" in page.content
    thumb = user_client.get(reverse("conversions:dataset_thumbnail", args=[ds.pk, 0]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"


def test_a_server_folder_outside_the_allow_list_is_refused(user_client, media, tmp_path, settings):
    write_image_folder(tmp_path / "elsewhere", per_class=2)
    settings.QUANTWEB_DATASET_ROOTS = [tmp_path / "allowed"]
    response = user_client.post(reverse("conversions:dataset_new"), {
        "name": "x", "server_path": str(tmp_path / "elsewhere"), "dataset_type": "auto",
    })  # fmt: skip
    assert "is not inside a folder allowed" in response.content.decode()
    settings.QUANTWEB_DATASET_ROOTS = [tmp_path]
    response = user_client.post(reverse("conversions:dataset_new"), {
        "name": "x", "server_path": str(tmp_path / "elsewhere"), "dataset_type": "auto",
    })  # fmt: skip
    assert response.status_code == 302
    assert Dataset.objects.get(name="x").source == "server"


def _checkpoint_post(client, name="tiny", trusted=False, arch="build", with_py=True, data=b"weights"):
    fields = {
        "name": name, "file": SimpleUploadedFile("tiny.pth", data), "architecture": arch,
        "input_shape": "1,3,32,32", "preprocess": "imagenet",
    }  # fmt: skip
    if with_py:
        fields["architecture_file"] = SimpleUploadedFile("model.py", b"def build():\n    pass\n")
    if trusted:
        fields["trusted"] = "on"
    return client.post(reverse("conversions:checkpoint_new"), fields)


def test_checkpoint_upload_records_digest_size_and_numbered_versions(user_client, media):
    assert _checkpoint_post(user_client, with_py=False, arch="torchvision.models:resnet18").status_code == 302
    assert _checkpoint_post(user_client, with_py=False, arch="torchvision.models:resnet18",
                            data=b"weights v2").status_code == 302
    v1, v2 = Checkpoint.objects.filter(name="tiny").order_by("version")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.sha256 == hashlib.sha256(b"weights").hexdigest() and v1.size_bytes == 7
    assert Path(v1.file.path).read_bytes() == b"weights"
    assert v1.model_spec().trust_checkpoint is False


def test_a_non_staff_upload_is_never_trusted(user_client, media):
    _checkpoint_post(user_client, trusted=True)
    ckpt = Checkpoint.objects.get()
    assert ckpt.trusted is False and not ckpt.launchable


def test_an_untrusted_uploaded_architecture_cannot_be_launched(user_client, media, tmp_path):
    _checkpoint_post(user_client)
    ckpt = Checkpoint.objects.get()
    response = user_client.post(reverse("conversions:run_new"), {
        "checkpoint": ckpt.pk, "variants": ["float16"], "num_calib_samples": 10, "seed": 0,
    })  # fmt: skip
    assert response.status_code == 200
    assert "a staff member must trust the checkpoint" in response.content.decode()
    assert not ConversionRun.objects.exists()


def test_staff_may_mark_an_upload_trusted(admin_client, media):
    assert _checkpoint_post(admin_client, trusted=True).status_code == 302
    assert Checkpoint.objects.get().launchable


def test_a_state_dict_needs_its_architecture(user_client, media):
    response = _checkpoint_post(user_client, arch="", with_py=False)
    assert "needs its architecture" in response.content.decode()
    assert not Checkpoint.objects.exists()


def test_the_new_run_form_shows_validation_errors(admin_client, media):
    ckpt = Checkpoint.objects.create(name="m", version=1, architecture="efficientnet-lite0", input_shape=[1, 3, 8, 8])
    response = admin_client.post(reverse("conversions:run_new"), {
        "checkpoint": ckpt.pk, "variants": ["int8", "bogus"], "num_calib_samples": 0, "seed": -1,
    })  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice. bogus" in html
    assert "Calibration samples 0 must be 1 or more images, e.g. 100" in html  # the engine's words
    assert "Seed -1 must be 0 or more, e.g. 0" in html
    response = admin_client.post(reverse("conversions:run_new"), {
        "checkpoint": ckpt.pk, "variants": ["int8"], "num_calib_samples": 10, "seed": 0,
    })  # fmt: skip
    assert "pick a dataset" in response.content.decode()


def test_a_server_folder_can_be_detected_again(user_client, media, tmp_path, settings):
    folder = write_image_folder(tmp_path / "shots", classes=("a",), per_class=2)
    settings.QUANTWEB_DATASET_ROOTS = [tmp_path]
    user_client.post(reverse("conversions:dataset_new"), {"name": "s", "server_path": str(folder),
                                                          "dataset_type": "auto"})  # fmt: skip
    write_image_folder(folder, classes=("b",), per_class=3)
    ds = Dataset.objects.get(name="s")
    assert ds.num_images == 2
    user_client.post(reverse("conversions:dataset_detect", args=[ds.pk]))
    ds.refresh_from_db()
    assert (ds.num_images, ds.num_classes) == (5, 2)
