"""Everyone signed in sees everything; only the owner or staff change a thing: each action as owner, as
another user and as staff, through the pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from support.files import write_image_folder

from conversions.models import Checkpoint, ConversionRun, Dataset
from conversions.run_settings import RunSettings

pytestmark = pytest.mark.django_db

ROLES = ["owner", "other", "staff"]


@pytest.fixture
def people(django_user_model):
    return {
        "owner": django_user_model.objects.create_user("ana", password="pw"),
        "other": django_user_model.objects.create_user("bob", password="pw"),
        "staff": django_user_model.objects.create_user("sam", password="pw", is_staff=True),
    }


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owned(people, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    ckpt = Checkpoint.objects.create(name="lite", version=1, architecture="efficientnet-lite0",
                                     input_shape=[1, 3, 32, 32], created_by=people["owner"])  # fmt: skip
    config = RunSettings(variants=("float16",)).config_for(ckpt, None)
    run = ConversionRun.objects.create(checkpoint=ckpt, variants="float16", model_name="lite", model_version=1,
                                       config=config.to_dict(), created_by=people["owner"])  # fmt: skip
    dataset = Dataset(name="pets", source=Dataset.Source.SERVER, path=str(write_image_folder(tmp_path / "pets")),
                      created_by=people["owner"])  # fmt: skip
    dataset.detect_structure()
    dataset.save()
    return {"checkpoint": ckpt, "run": run, "dataset": dataset}


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_or_staff_may_cancel_a_run(people, owned, role):
    run = owned["run"]
    response = _client(people[role]).post(reverse("conversions:run_cancel", args=[run.pk]))
    run.refresh_from_db()
    if role == "other":
        assert response.status_code == 403
        assert "Only the owner of" in response.content.decode()
        assert run.status == "queued" and run.cancelled_by is None
    else:
        assert response.status_code == 302
        assert run.status == "cancelled" and run.cancelled_by == people[role]


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_or_staff_may_re_run(people, owned, role):
    run = owned["run"]
    ConversionRun.objects.filter(pk=run.pk).update(status="succeeded")
    response = _client(people[role]).post(reverse("conversions:run_rerun", args=[run.pk]))
    reruns = ConversionRun.objects.filter(rerun_of=run)
    if role == "other":
        assert response.status_code == 403 and not reruns.exists()
    else:
        assert response.status_code == 302
        assert reruns.get().created_by == people[role]


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_or_staff_may_detect_a_dataset_again(people, owned, role):
    dataset = owned["dataset"]
    write_image_folder(dataset.folder, classes=("bird",))
    response = _client(people[role]).post(reverse("conversions:dataset_detect", args=[dataset.pk]))
    dataset.refresh_from_db()
    if role == "other":
        assert response.status_code == 403 and dataset.num_classes == 2
    else:
        assert response.status_code == 302 and dataset.num_classes == 3


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_or_staff_may_add_a_version_under_a_model_name(people, owned, role):
    response = _client(people[role]).post(reverse("conversions:checkpoint_new"), {
        "name": "lite", "architecture": "efficientnet-lite0", "input_shape": "1,3,32,32", "preprocess": "imagenet",
        "file": SimpleUploadedFile("w.pth", b"weights"),
    })  # fmt: skip
    versions = Checkpoint.objects.filter(name="lite").count()
    if role == "other":
        assert response.status_code == 200 and versions == 1
        assert "belongs to another user" in response.content.decode()
    else:
        assert response.status_code == 302 and versions == 2


def test_everyone_signed_in_sees_every_run_dataset_and_checkpoint(people, owned):
    client = _client(people["other"])
    for obj in owned.values():
        assert client.get(obj.get_absolute_url()).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_only_the_owner_or_staff_may_delete_a_dataset(people, owned, role):
    dataset = owned["dataset"]
    thumbs = dataset.thumbnail_dir
    thumbs.mkdir(parents=True)
    response = _client(people[role]).post(reverse("conversions:dataset_delete", args=[dataset.pk]))
    if role == "other":
        assert response.status_code == 403 and Dataset.objects.filter(pk=dataset.pk).exists()
    else:
        assert response.status_code == 302 and not Dataset.objects.filter(pk=dataset.pk).exists()
        assert not thumbs.exists()
        assert Path(dataset.path).is_dir(), "a server folder is registered, not owned: it stays"


def test_a_dataset_that_runs_used_is_kept(people, owned):
    dataset = owned["dataset"]
    ConversionRun.objects.filter(pk=owned["run"].pk).update(dataset=dataset)
    response = _client(people["owner"]).post(reverse("conversions:dataset_delete", args=[dataset.pk]), follow=True)
    assert "keep it for the record" in response.content.decode()
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_pages_offer_change_buttons_only_to_who_may_use_them(people, owned):
    url = owned["dataset"].get_absolute_url()
    assert "Detect again" in _client(people["owner"]).get(url).content.decode()
    assert "Detect again" not in _client(people["other"]).get(url).content.decode()
    run_url = owned["run"].get_absolute_url()
    assert ">Cancel<" in _client(people["staff"]).get(run_url).content.decode()
    assert ">Cancel<" not in _client(people["other"]).get(run_url).content.decode()
