"""Uploads are refused while they stream, over real HTTP: nobody's body is not read at all, a file over its
limit stops at the limit and leaves nothing, one under the limit still registers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from support.files import write_image_folder, zip_folder
from support.portal_fixtures import page_session

from conversions.models import ApiToken, Dataset

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


class LargestSpool:
    """Watches the upload temp dir while a request runs: the most bytes any file in it held."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.largest, self._stop = folder, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for path in self.folder.iterdir():
                try:
                    self.largest = max(self.largest, path.stat().st_size)
                except FileNotFoundError:  # deleted between listing and stat
                    pass
            time.sleep(0.002)

    def __enter__(self) -> "LargestSpool":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def spool(settings, tmp_path) -> Path:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


def _zeros_zip(tmp_path: Path, size: int) -> Path:
    """A stored (uncompressed) zip of ``size`` bytes of noise-free zeros: its upload is ``size`` bytes long."""
    import zipfile

    path = tmp_path / f"big-{size}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("photos/zeros.bin", b"\0" * size)
    return path


def test_a_90_mb_upload_without_a_session_is_refused_before_it_is_read(live_server, media, spool, tmp_path):
    page = page_session(live_server.url)
    archive = _zeros_zip(tmp_path, 90 * MB)
    started = time.monotonic()
    with LargestSpool(spool) as watch, open(archive, "rb") as fh:
        response = page.post(f"{live_server.url}/datasets/new/", timeout=120,
                             data={"csrfmiddlewaretoken": page.csrf, "name": "big"}, files={"archive": fh})  # fmt: skip
    assert response.status_code == 403, response.text[:500]
    assert "Sign in" in response.text and "the upload was not read" in response.text
    print(f"90 MB upload without a session: {response.status_code} in {time.monotonic() - started:.2f} s, "
          f"largest file in the upload temp dir {watch.largest} bytes")
    assert watch.largest < 1 * MB, f"{watch.largest} bytes were spooled to disk"
    assert list(spool.iterdir()) == [] and not Dataset.objects.exists()


def test_an_api_upload_without_a_token_is_refused_before_it_is_read(live_server, media, spool, tmp_path):
    import requests

    archive = _zeros_zip(tmp_path, 40 * MB)
    with LargestSpool(spool) as watch, open(archive, "rb") as fh:
        response = requests.post(f"{live_server.url}/api/v1/datasets/", data={"name": "big"}, files={"archive": fh},
                                 headers={"Authorization": "Bearer qw_not-a-token"}, timeout=120)  # fmt: skip
    assert response.status_code == 401, response.text[:500]
    assert watch.largest < 1 * MB and list(spool.iterdir()) == []


def test_a_signed_in_upload_over_the_limit_stops_at_the_limit_with_a_worded_page(
    live_server, media, spool, settings, tmp_path, django_user_model
):
    settings.QUANTWEB_MAX_DATASET_UPLOAD = 2 * MB
    page = page_session(live_server.url, django_user_model.objects.create_user("ana", password="pw"))
    archive = _zeros_zip(tmp_path, 30 * MB)
    with LargestSpool(spool) as watch, open(archive, "rb") as fh:
        response = page.post(f"{live_server.url}/datasets/new/", timeout=120,
                             data={"csrfmiddlewaretoken": page.csrf, "name": "big"}, files={"archive": fh})  # fmt: skip
    assert response.status_code == 413, response.text[:500]
    assert "is larger than 2 MB, the limit for &#x27;archive&#x27;; upload a smaller file" in response.text
    print(f"30 MB upload over a 2 MB limit: {response.status_code}, largest spooled file {watch.largest} bytes")
    assert watch.largest <= 2 * MB + 256 * 1024, f"{watch.largest} bytes were spooled past the 2 MB limit"
    assert list(spool.iterdir()) == [] and not Dataset.objects.exists()
    assert not (media / "datasets").exists() or not any((media / "datasets").iterdir())


def test_an_api_upload_over_the_limit_is_a_413_naming_the_field(live_server, media, spool, settings, tmp_path,
                                                                 django_user_model):  # fmt: skip
    import requests

    settings.QUANTWEB_MAX_DATASET_UPLOAD = 2 * MB
    token = ApiToken.issue(django_user_model.objects.create_user("ana", password="pw"), name="ci")[1]
    with open(_zeros_zip(tmp_path, 10 * MB), "rb") as fh:
        response = requests.post(f"{live_server.url}/api/v1/datasets/", data={"name": "big"}, files={"archive": fh},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=120)  # fmt: skip
    assert response.status_code == 413, response.text[:500]
    body = response.json()
    assert body["field"] == "archive" and "is larger than 2 MB, the limit for 'archive'" in body["error"]
    assert list(spool.iterdir()) == [] and not Dataset.objects.exists()


def test_a_body_longer_than_the_server_takes_is_refused_unread(live_server, media, spool, settings, tmp_path,
                                                                django_user_model):  # fmt: skip
    settings.QUANTWEB_MAX_UPLOAD_BODY = 5 * MB
    page = page_session(live_server.url, django_user_model.objects.create_user("ana", password="pw"))
    with LargestSpool(spool) as watch, open(_zeros_zip(tmp_path, 20 * MB), "rb") as fh:
        response = page.post(f"{live_server.url}/datasets/new/", timeout=120,
                             data={"csrfmiddlewaretoken": page.csrf, "name": "big"}, files={"archive": fh})  # fmt: skip
    assert response.status_code == 413 and "the server takes at most 5 MB in one request" in response.text
    assert watch.largest == 0


def test_an_upload_under_the_limit_still_registers(live_server, media, spool, settings, tmp_path, django_user_model):
    settings.QUANTWEB_MAX_DATASET_UPLOAD = 2 * MB
    page = page_session(live_server.url, django_user_model.objects.create_user("ana", password="pw"))
    archive = zip_folder(write_image_folder(tmp_path / "pets"), tmp_path / "pets.zip")
    with open(archive, "rb") as fh:
        response = page.post(f"{live_server.url}/datasets/new/", timeout=120, allow_redirects=False,
                             data={"csrfmiddlewaretoken": page.csrf, "name": "pets", "dataset_type": "auto"}, files={"archive": fh})  # fmt: skip
    assert response.status_code == 302, response.text[-2000:]
    dataset = Dataset.objects.get(name="pets")
    assert dataset.status == Dataset.Status.READY and dataset.num_images == 16
