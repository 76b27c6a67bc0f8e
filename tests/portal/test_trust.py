"""As a non-staff user through the pages, none of the ways code can run does run without a staff member's trust.

Each hostile checkpoint would create a marker file if its code ran. The page refuses it, and a run launched
anyway (the way the worker runs it: ``execute_run``) is refused by the engine with the same rule.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from support.files import staff_member, write_image_folder, zip_folder
from support.hostile import marker_source, write_pickling_pt2

from conversions.engine.errors import CheckpointError
from conversions.models import Checkpoint, ConversionRun, Dataset
from conversions.run_settings import RunSettings

pytestmark = pytest.mark.django_db

STAFF_MUST_TRUST = "a staff member to trust the checkpoint"


def _upload_checkpoint(client, name: str, filename: str, data: bytes, architecture: str = "") -> Checkpoint:
    response = client.post(reverse("conversions:checkpoint_new"), {
        "name": name, "file": SimpleUploadedFile(filename, data), "architecture": architecture,
        "input_shape": "1,3,16,16", "preprocess": "raw",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Checkpoint.objects.get(name=name)


def _refused_everywhere(client, ckpt: Checkpoint, marker) -> None:
    """The new-run page refuses it, and so does the engine when a run of it executes regardless."""
    page = client.post(reverse("conversions:run_new"), {
        "checkpoint": ckpt.pk, "variants": ["float16"], "num_calib_samples": 10, "seed": 0,
    })  # fmt: skip
    assert page.status_code == 200
    assert "a staff member must trust the checkpoint" in page.content.decode()
    assert not ConversionRun.objects.exists()

    config = RunSettings(variants=("float16",)).config_for(ckpt, None)
    with pytest.raises(CheckpointError):
        ConversionRun.launch(config, ckpt.created_by, checkpoint=ckpt, immediate=True)
    run = ConversionRun.objects.get()
    assert run.status == "failed" and STAFF_MUST_TRUST in run.error
    assert not marker.exists(), "the hostile code ran"


def _evil_state_dict() -> bytes:
    import io

    import torch
    import torch.nn as nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def test_an_architecture_naming_a_py_file_from_a_dataset_archive_does_not_run(ana, media, tmp_path):
    marker = tmp_path / "ran"
    folder = write_image_folder(tmp_path / "upload" / "pets")
    (folder / "evil.py").write_text(marker_source(marker))
    archive = zip_folder(folder, tmp_path / "pets.zip")
    response = ana.post(reverse("conversions:dataset_new"), {
        "name": "pets", "archive": SimpleUploadedFile("pets.zip", archive.read_bytes()), "dataset_type": "auto",
    })  # fmt: skip
    assert response.status_code == 302
    evil = Dataset.objects.get(name="pets").folder / "evil.py"
    assert evil.is_file()

    ckpt = _upload_checkpoint(ana, "sneaky", "w.pth", _evil_state_dict(), architecture=f"{evil}:build")

    assert ckpt.runs_code and not ckpt.launchable
    _refused_everywhere(ana, ckpt, marker)

    # The hostile file is real: once a staff member trusts this exact version, it does run.
    ckpt.trust(staff_member())
    ConversionRun.launch(RunSettings(variants=("float16",)).config_for(ckpt, None), ckpt.created_by,
                         checkpoint=ckpt, immediate=True)  # fmt: skip
    assert marker.exists()


def test_a_module_function_architecture_does_not_run(ana, media, tmp_path):
    marker = tmp_path / "ran"
    ckpt = _upload_checkpoint(ana, "modref", "w.pth", _evil_state_dict(), architecture="subprocess:getoutput")
    assert ckpt.runs_code and not ckpt.launchable
    _refused_everywhere(ana, ckpt, marker)


def test_a_pt2_with_a_pickled_payload_does_not_run(ana, media, tmp_path):
    marker = tmp_path / "ran"
    evil = write_pickling_pt2(tmp_path / "evil.pt2", marker)
    ckpt = _upload_checkpoint(ana, "exported", "evil.pt2", evil.read_bytes())
    assert ckpt.runs_code and not ckpt.launchable
    _refused_everywhere(ana, ckpt, marker)


def test_labels_are_text_files_only(ana, media):
    response = ana.post(reverse("conversions:checkpoint_new"), {
        "name": "m", "architecture": "efficientnet-lite0", "input_shape": "1,3,16,16", "preprocess": "raw",
        "labels": SimpleUploadedFile("evil.py", b"import os\n"),
    })  # fmt: skip
    assert "The labels file must be a .txt file" in response.content.decode()
    assert not Checkpoint.objects.exists()


def test_a_new_file_is_a_new_version_untrusted_again(ana, admin_client, media):
    v1 = _upload_checkpoint(admin_client, "m", "w.pth", _evil_state_dict(), architecture="subprocess:getoutput")
    v1.trust(staff_member())
    assert v1.launchable
    response = admin_client.post(reverse("conversions:checkpoint_new"), {
        "name": "m", "file": SimpleUploadedFile("w.pth", b"other bytes"), "architecture": "subprocess:getoutput",
        "input_shape": "1,3,16,16", "preprocess": "raw",
    })  # fmt: skip
    assert response.status_code == 302
    v2 = Checkpoint.objects.get(name="m", version=2)
    assert v2.trusted is False and not v2.launchable
    v1.refresh_from_db()
    assert v1.launchable


def test_pages_show_non_staff_no_absolute_server_paths(ana, media, tmp_path, settings):
    folder = write_image_folder(tmp_path / "upload" / "pets")
    archive = zip_folder(folder, tmp_path / "pets.zip")
    ana.post(reverse("conversions:dataset_new"), {
        "name": "pets", "archive": SimpleUploadedFile("pets.zip", archive.read_bytes()), "dataset_type": "auto",
    })  # fmt: skip
    dataset = Dataset.objects.get(name="pets")
    for url in (dataset.get_absolute_url(), reverse("conversions:dataset_new")):
        page = ana.get(url).content.decode()
        assert str(media) not in page and str(settings.BASE_DIR) not in page, url
    ana.force_login(staff_member())
    assert str(dataset.folder) in ana.get(dataset.get_absolute_url()).content.decode()
