"""Who may do what, and bad input answered as ``{"error", "field"}`` naming the form field at fault."""

from __future__ import annotations

import pytest
from support.files import write_image_folder, write_tiny_model

from conversions.models import Checkpoint, ConversionRun, Dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def builtin(alice):
    return Checkpoint.objects.create(name="lite", version=1, architecture="efficientnet-lite0",
                                     input_shape=[1, 3, 224, 224], created_by=alice)  # fmt: skip


@pytest.fixture
def pets(tmp_path, media, alice):
    return Dataset.register(name="pets", path=write_image_folder(tmp_path / "pets"), source=Dataset.Source.SERVER,
                            user=alice)  # fmt: skip


def _error(response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "field"} and body["field"] == field, body
    return body["error"]


def test_only_the_owner_or_staff_may_cancel_a_run(api_as, alice, bob, admin_user, builtin):
    run = ConversionRun.objects.create(checkpoint=builtin, variants="float32", model_name="lite", created_by=alice)
    message = _error(api_as(bob).post(f"/runs/{run.pk}/cancel/"), 403, "")
    assert "Only the owner" in message
    assert _error(api_as(bob).post(f"/runs/{run.pk}/rerun/"), 403, "")
    run.refresh_from_db()
    assert run.status == "queued" and ConversionRun.objects.count() == 1

    response = api_as(alice).post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert "already ended (cancelled)" in _error(api_as(alice).post(f"/runs/{run.pk}/cancel/"), 409, "")

    other = ConversionRun.objects.create(checkpoint=builtin, variants="float32", model_name="lite", created_by=alice)
    assert api_as(admin_user).post(f"/runs/{other.pk}/cancel/").json()["status"] == "cancelled", "staff may"


def test_unknown_ids_answer_404(api_as, alice):
    api = api_as(alice)
    for path in ("/runs/999999/", "/checkpoints/999999/", "/datasets/999999/", "/artifacts/999999/x.tflite"):
        _error(api.get(path), 404, "")
    _error(api.post("/runs/999999/cancel/"), 404, "")


@pytest.mark.parametrize("change,field,words", [
    ({"num_calib_samples": 0}, "num_calib_samples", "Calibration samples 0 must be 1 or more images, e.g. 100"),
    ({"num_calib_samples": "many"}, "num_calib_samples", "integer"),
    ({"dataset": None}, "dataset", "int8 and int16x8 are calibrated"),
    ({"checkpoint": 999999}, "checkpoint", "valid choice"),
    ({"variants": ["int4"]}, "variants", "int4"),
    ({"calibration_method": "guess"}, "calibration_method", "guess"),
    ({"max_drop": -1}, "max_drop", "Accuracy budget -1.0 must be 0 or more points, e.g. 1"),
    ({"seed": -1}, "seed", "Seed -1 must be 0 or more, e.g. 0"),
    ({"num_eval_samples": 0}, "num_eval_samples", "Held-out samples 0 leaves no held-out images to verify"),
])  # fmt: skip
def test_a_run_with_bad_settings_is_refused_with_the_field(api_as, alice, builtin, pets, change, field, words):
    payload = {"checkpoint": builtin.pk, "dataset": pets.pk, "variants": ["int8"], "num_calib_samples": 4}
    message = _error(api_as(alice).post("/runs/", json={**payload, **change}), 400, field)
    assert words in message
    assert not ConversionRun.objects.exists()


def test_a_run_of_untrusted_uploaded_code_is_refused_as_on_the_page(api_as, alice, pets, tmp_path):
    weights, source = write_tiny_model(tmp_path / "model")
    api = api_as(alice)
    with open(weights, "rb") as w, open(source, "rb") as s:
        response = api.post("/checkpoints/", data={"name": "tiny", "architecture": "build", "input_shape": "1,3,32,32",
                                                   "trusted": "true"},
                            files={"file": w, "architecture_file": s})  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["trusted"] is False, "only staff may trust"
    message = _error(api.post("/runs/", json={"checkpoint": response.json()["id"], "dataset": pets.pk}), 400,
                     "checkpoint")  # fmt: skip
    assert "a staff member must trust the checkpoint" in message


@pytest.mark.parametrize("data,files,field,words", [
    ({"name": "m", "input_shape": "1,3,224,224"}, {}, "file", "Upload a checkpoint"),
    ({"name": "m"}, {"file": ("w.pth", b"x")}, "architecture", "needs its architecture"),
    ({"name": "m", "architecture": "efficientnet-lite0"}, {"file": ("w.txt", b"x")}, "file", ".pth"),
    ({"name": "bad name!", "architecture": "efficientnet-lite0"}, {}, "name", "letters, digits"),
    ({"name": "m", "architecture": "efficientnet-lite0", "input_shape": "224"}, {}, "input_shape", "input shape"),
])  # fmt: skip
def test_a_bad_checkpoint_upload_is_refused_with_the_field(api_as, alice, data, files, field, words):
    message = _error(api_as(alice).post("/checkpoints/", data=data, files=files or {"none": ("", b"")}), 400, field)
    assert words in message
    assert not Checkpoint.objects.exists()


def test_a_bad_dataset_upload_is_refused_with_the_field(api_as, alice, pets):
    api = api_as(alice)
    message = _error(api.post("/datasets/", data={"name": "x"}, files={"archive": ("x.rar", b"rar")}), 400, "archive")
    assert ".zip" in message
    message = _error(api.post("/datasets/", data={"name": "pets"}, files={"archive": ("p.zip", b"zip")}), 400, "name")
    assert "exists" in message
    message = _error(api.post("/datasets/", data={"name": "y"}, files={"archive": ("y.zip", b"not a zip")}), 400,
                     "archive")  # fmt: skip
    assert "rejected" in message
    assert list(Dataset.objects.values_list("name", flat=True)) == ["pets"]


def test_the_run_list_is_paginated_and_filtered(api_as, alice, bob, builtin):
    for i in range(7):
        ConversionRun.objects.create(checkpoint=builtin, variants="float32,int8" if i % 2 else "float16",
                                     model_name="lite", created_by=alice if i < 5 else bob)  # fmt: skip
    api = api_as(alice)
    page = api.get("/runs/", params={"page_size": 3, "page": 2}).json()
    assert (page["count"], page["pages"], page["page"], len(page["results"])) == (7, 3, 2, 3)
    assert [r["id"] for r in page["results"]] == sorted([r["id"] for r in page["results"]], reverse=True)
    assert api.get("/runs/", params={"user": "bob"}).json()["count"] == 2
    assert api.get("/runs/", params={"variant": "int8"}).json()["count"] == 3
    assert {r["variants"][0] for r in api.get("/runs/", params={"variant": "float16"}).json()["results"]} == {"float16"}
    _error(api.get("/runs/", params={"page_size": 1000}), 400, "page_size")
    _error(api.get("/runs/", params={"page": 9}), 404, "page")


def test_a_run_shows_no_server_paths_to_other_users_but_does_to_staff(api_as, alice, bob, admin_user, builtin):
    secret = "/srv/quantweb/media/checkpoints/alice/lite.pth"
    run = ConversionRun.objects.create(checkpoint=builtin, variants="float32", model_name="lite", created_by=alice,
                                       status="failed", error=f"could not read {secret}",
                                       config={"model": {"checkpoint": secret}})  # fmt: skip
    body = api_as(bob).get(f"/runs/{run.pk}/").json()
    assert "/srv/quantweb" not in str(body) and "lite.pth" in body["error"], body
    staff = api_as(admin_user).get(f"/runs/{run.pk}/").json()
    assert staff["error"] == f"could not read {secret}" and staff["config"]["model"]["checkpoint"] == secret
