"""The README's curl flow, extracted from README.md and run as written by bash, against a live server and a
real RQ worker: token, checkpoint upload, dataset upload, launch, poll, download, sha256 check."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from support.workers import WorkerPool, purge_queue, worker_environment

from conversions.models import ApiToken, Artifact, ConversionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECTION = "## Drive it from CI: the JSON API"


def readme_flow() -> str:
    """The ```bash block of the README's API section, exactly as a reader copies it."""
    text = (Path(settings.BASE_DIR) / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the API section has one bash block: the flow"
    return blocks[0]


def test_the_readme_flow_runs_as_written(live_server, media, django_user_model, tmp_path):
    django_user_model.objects.create_user("ci-bot", password="unused")
    queue = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(queue)
    workers = WorkerPool(tmp_path)
    workers.start(burst=False)
    work = tmp_path / "ci"  # the flow writes its files here; it reads the checkout through these links
    work.mkdir()
    for name in (".venv", "manage.py", "demo"):
        (work / name).symlink_to(Path(settings.BASE_DIR) / name)
    env = worker_environment(QUANTWEB=live_server.url)
    env.pop("QUANTWEB_TOKEN", None)
    try:
        done = subprocess.run(["bash", "-c", readme_flow()], cwd=work, env=env, capture_output=True, text=True,
                              timeout=400)  # fmt: skip
    finally:
        workers.close()
        purge_queue(queue)
    log = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}\nworker:\n{workers.log_path(0).read_text()[-3000:]}"
    assert done.returncode == 0, log
    assert "model_int8.tflite: OK" in done.stdout, log

    run = ConversionRun.objects.get()
    assert (run.status, run.variants, run.num_calib_samples, run.created_by.username) == ("succeeded", "int8", 8, "ci-bot")
    assert run.checkpoint.architecture == "efficientnet-lite0" and not run.checkpoint.trusted
    artifact = Artifact.objects.get(run=run)
    body = (work / "model_int8.tflite").read_bytes()
    assert hashlib.sha256(body).hexdigest() == artifact.sha256 and body[4:8] == b"TFL3"
    assert json.loads((work / "report.json").read_text())["variants"][0]["variant"] == "int8"
    assert json.loads((work / "run.json").read_text())["summary"]["int8"]["fully_integer"] is True
    assert ApiToken.objects.get(user__username="ci-bot").name == "nightly CI"
