"""A CI job's whole day over real HTTP, with a real RQ worker: upload a checkpoint and a dataset, launch,
poll until the run ends, download the int8 file and the report and check their SHA-256, re-run."""

from __future__ import annotations

import hashlib
import time

import django_rq
import pytest
from support.files import write_image_folder, write_tiny_model, zip_folder
from support.workers import WorkerPool, purge_queue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RUN_TIMEOUT = 240


@pytest.fixture
def workers(settings, tmp_path):
    queue = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(queue)
    pool = WorkerPool(tmp_path)
    yield pool
    pool.close()
    purge_queue(queue)


def _poll(api, url: str, timeout: float = RUN_TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(url).json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(1)
    pytest.fail(f"the run did not end in {timeout} s: {run}")


def test_upload_launch_poll_and_download_with_a_token(api_as, admin_user, workers, tmp_path):
    api = api_as(admin_user)  # staff: the tiny model's architecture is an uploaded .py, which staff trust
    weights, source = write_tiny_model(tmp_path / "model")
    with open(weights, "rb") as w, open(source, "rb") as s:
        response = api.post("/checkpoints/", data={"name": "tiny", "architecture": "build", "input_shape": "1,3,32,32",
                                                   "trusted": "true"}, files={"file": w, "architecture_file": s})  # fmt: skip
    assert response.status_code == 201, response.text
    checkpoint = response.json()
    assert (checkpoint["name"], checkpoint["version"], checkpoint["trusted"]) == ("tiny", 1, True)
    assert checkpoint["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert api.get(checkpoint["url"]).json() == checkpoint

    archive = zip_folder(write_image_folder(tmp_path / "pets"), tmp_path / "pets.zip")
    with open(archive, "rb") as a:
        response = api.post("/datasets/", data={"name": "pets"}, files={"archive": a})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["layout"], dataset["images"], dataset["classes"], dataset["skipped"]) == ("imagefolder", 16, 2, 0)
    assert dataset["class_names"] == ["cat", "dog"]

    response = api.post("/runs/", json={"checkpoint": checkpoint["id"], "dataset": dataset["id"],
                                        "variants": ["float32", "int8"], "num_calib_samples": 8,
                                        "num_eval_samples": 6, "seed": 3})  # fmt: skip
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "queued"

    workers.start()
    run = _poll(api, created["url"])
    assert run["status"] == "succeeded", run["error"] + (workers.log_path(0).read_text()[-3000:])
    assert run["config"]["data"]["num_calib_samples"] == 8 and run["config"]["data"]["seed"] == 3
    assert set(run["summary"]) == {"float32", "int8"}
    int8 = run["summary"]["int8"]
    # <= 1, not < 1: this CNN's 330 weights weigh less than the metadata both files carry (3.8 kB each).
    assert int8["size_bytes"] > 0 and int8["size_ratio"] <= 1 and int8["latency_ms"] > 0
    assert 0 <= int8["top1_agreement"] <= 100 and int8["sqnr_db"] is not None
    assert int8["fully_integer"] is True

    artifacts = {a["variant"]: a for a in run["artifacts"]}
    assert set(artifacts) == {"float32", "int8"}
    download = api.get(artifacts["int8"]["url"])
    assert download.status_code == 200
    assert f'filename="{artifacts["int8"]["filename"]}"' in download.headers["Content-Disposition"]
    digest = hashlib.sha256(download.content).hexdigest()
    assert digest == download.headers["X-Checksum-SHA256"] == artifacts["int8"]["sha256"]
    assert len(download.content) == artifacts["int8"]["size_bytes"] and download.content[4:8] == b"TFL3"

    report = api.get(run["report_url"])
    assert report.status_code == 200 and "attachment" in report.headers["Content-Disposition"]
    assert hashlib.sha256(report.content).hexdigest() == report.headers["X-Checksum-SHA256"]
    assert {v["variant"] for v in report.json()["variants"]} == {"float32", "int8"}

    listed = api.get("/runs/", params={"status": "succeeded", "model": "tiny"}).json()
    assert [r["id"] for r in listed["results"]] == [run["id"]]
    assert listed["results"][0]["primary_variant"] == "int8" and listed["results"][0]["user"] == "admin"

    response = api.post(f"/runs/{run['id']}/rerun/")
    assert response.status_code == 201
    again = api.get(response.json()["url"]).json()
    assert again["status"] == "queued" and again["checkpoint"] == checkpoint["id"]
    assert again["config"]["variants"] == run["config"]["variants"]
    assert api.post(f"/runs/{again['id']}/cancel/").json()["status"] == "cancelled"
    assert api.post(f"/runs/{run['id']}/cancel/").status_code == 409, "a run that ended cannot be cancelled"
