"""Helpers the portal tests and benchmarks share: small real files, RQ worker processes, many runs.

Nothing here is imported by the portal itself.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from conversions.models import ConversionRun

TINY_MODEL_SOURCE = '''\
import torch.nn as nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
'''


def write_tiny_model(folder: Path) -> tuple[Path, Path]:
    """A 10-class CNN: its architecture file (``model.py``, factory ``build``) and a state-dict ``.pth``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "model.py"
    source.write_text(TINY_MODEL_SOURCE)
    namespace: dict = {}
    exec(compile(TINY_MODEL_SOURCE, str(source), "exec"), namespace)
    torch.manual_seed(0)
    checkpoint = folder / "tiny.pth"
    torch.save(namespace["build"]().state_dict(), checkpoint)
    return checkpoint, source


def register_tiny(folder: Path, user=None):
    """Registers the tiny CNN (trusted: its architecture is an uploaded .py) and a small ImageFolder;
    returns ``(checkpoint, dataset)``."""
    from conversions.models import Checkpoint, Dataset

    checkpoint_path, source = write_tiny_model(folder / "model")
    ckpt = Checkpoint(name="tiny", version=Checkpoint.next_version("tiny"), architecture="build",
                      input_shape=[1, 3, 32, 32], trusted=True, created_by=user)  # fmt: skip
    ckpt.save()
    with open(checkpoint_path, "rb") as weights, open(source, "rb") as code:
        ckpt.file.save("tiny.pth", weights, save=False)
        ckpt.architecture_file.save("model.py", code, save=False)
    ckpt.record_file_digest()
    ckpt.save()
    ds = Dataset(name=f"pets-{ckpt.version}", source=Dataset.Source.SERVER,
                 path=str(write_image_folder(folder / "pets")), created_by=user)  # fmt: skip
    ds.detect_structure()
    ds.save()
    ds.refresh_thumbnails()
    ds.save(update_fields=["thumbnails"])
    return ckpt, ds


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 8) -> Path:
    """An ImageFolder of small noisy JPEGs (real decodes, distinct pixels)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{cls}_{i:02d}.jpg", quality=90)
    return root


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, str(path.relative_to(folder.parent)))
    return archive


def database_url() -> str:
    """The URL of the database this process uses (in tests: pytest-django's test database)."""
    db = connection.settings_dict
    if "sqlite" in db["ENGINE"]:
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(**extra: str) -> dict[str, str]:
    """Environment for a worker process that sees this process's database, queue and media folder."""
    env = dict(os.environ)
    env.pop("PYTEST_VERSION", None)
    env.update(
        DATABASE_URL=database_url(),
        QUANTWEB_QUEUE=settings.RQ_QUEUE_NAME,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        REDIS_URL=settings.REDIS_URL,
        QUANTWEB_RUN_HEARTBEAT_SECONDS=str(settings.QUANTWEB_RUN_HEARTBEAT_SECONDS),
        **extra,
    )
    return env


def start_worker(log_path: Path, burst: bool = True, name: str | None = None, **env: str) -> subprocess.Popen:
    """Starts ``manage.py rqworker`` on this session's queue, in its own process group (so a test can
    kill it, work horse included, with ``os.killpg``)."""
    cmd = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "rqworker", settings.RQ_QUEUE_NAME]
    cmd += ["--name", name or f"test-worker-{uuid.uuid4().hex[:8]}"]
    if burst:
        cmd.append("--burst")
    log = open(log_path, "ab")
    return subprocess.Popen(
        cmd, cwd=settings.BASE_DIR, env=worker_environment(**env), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def purge_queue(queue) -> None:
    """Removes a test queue's jobs, registries and results from Redis."""
    from rq.job import Job

    registries = [queue.started_job_registry, queue.finished_job_registry, queue.failed_job_registry,
                  queue.canceled_job_registry, queue.deferred_job_registry, queue.scheduled_job_registry]
    job_ids = set(queue.get_job_ids())
    for registry in registries:
        job_ids.update(registry.get_job_ids())
    queue.empty()
    connection = queue.connection
    for job_id in job_ids:
        connection.delete(Job.key_for(job_id), f"{Job.key_for(job_id)}:results")
    connection.delete(*[r.key for r in registries])


def kill_worker(proc: subprocess.Popen) -> list[int]:
    """SIGKILLs a worker and its work horse (RQ puts the horse in a session of its own), as the OOM killer
    or a machine restart would; returns the pids killed."""
    import psutil

    try:
        family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()
    psutil.wait_procs(family, timeout=10)
    return [p.pid for p in family]


class WorkerPool:
    """Worker processes started by one test; ``close()`` kills whatever is still running."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, burst: bool = True) -> subprocess.Popen:
        proc = start_worker(self.log_path(len(self.procs)), burst=burst)
        self.procs.append(proc)
        return proc

    def log_path(self, index: int) -> Path:
        return self.log_dir / f"worker-{index}.log"

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_worker(proc)


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def bulk_create_runs(n: int, users: list, checkpoints: list, datasets: list, seed: int = 0) -> None:
    """``n`` finished-looking runs spread over the given users, checkpoints and datasets (for the history
    page's query-count test and benchmark)."""
    rng = random.Random(seed)
    statuses = ["succeeded"] * 8 + ["failed", "cancelled"]
    variant_sets = ["int8", "none,int8", "float16", "dynamic,int8", "int16x8", "none,float16,dynamic,int8"]
    now = timezone.now()
    batch = []
    for i in range(n):
        ckpt, ds = rng.choice(checkpoints), rng.choice(datasets)
        variants = rng.choice(variant_sets)
        status = rng.choice(statuses)
        ok = status == "succeeded"
        created = now - timezone.timedelta(minutes=n - i)
        batch.append(ConversionRun(
            checkpoint=ckpt, dataset=ds, variants=variants, status=status, model_name=ckpt.name,
            model_version=ckpt.version, dataset_name=ds.name, created_by=rng.choice(users), created=created,
            started=created, finished=created + timezone.timedelta(seconds=40), duration_s=40.0 + rng.random() * 30,
            primary_variant=variants.split(",")[-1] if ok else "", size_bytes=5_200_000 if ok else None,
            size_ratio=0.28 if ok else None, top1_agreement=90 + rng.random() * 10 if ok else None,
            sqnr_db=20.0 if ok else None, config={"model": {"model": ckpt.name}}, stage="done",
            report={"variants": [{"variant": "int8", "size_bytes": 5_200_000}]} if ok else None,
            log="line\n" * 50, error="" if ok else "something failed",
        ))  # fmt: skip
        if len(batch) == 2000:
            ConversionRun.objects.bulk_create(batch)
            batch = []
    ConversionRun.objects.bulk_create(batch)


def near_tie_model():
    """Outputs ``blue``, ``green``, ``red`` whose first two differ by 0.001 x (G - B): PyTorch tells blue from
    green images, while int8 weights round the 0.001 to 0 and tie them, so int8 answers blue for every image."""
    import torch
    import torch.nn as nn

    class NearTie(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = nn.Conv2d(3, 3, 1, bias=False)
            self.mix.weight.data = torch.tensor([[1.0, 0, 0], [1.0, 0.001, -0.001], [8.0, 0, 0]])[:, :, None, None]

        def forward(self, x):
            return self.mix(x).mean(dim=(2, 3))

    return NearTie().eval()


def benchmark_report(folder: Path) -> dict:
    """A real five-variant run (latency at 1 and 2 threads, labeled accuracy, a labels file) of a model that
    int8 gets wrong on every green image: its report dict, with disagreement examples and per-layer error."""
    import numpy as np
    import torch
    from PIL import Image

    from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
    from conversions.engine.pipeline import run_export

    rng = np.random.default_rng(0)
    for name, rgb in (("blue", (20, 30, 230)), ("green", (25, 220, 40))):
        (folder / "data" / name).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            pixels = np.clip(np.tile(np.array(rgb, np.int16), (40, 40, 1)) + rng.integers(-40, 41, (40, 40, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / "data" / name / f"{name}_{i:02d}.jpg", quality=90)
    labels = folder / "labels.txt"
    labels.write_text("blue\ngreen\nred\n")
    checkpoint = folder / "near_tie.pt2"
    torch.export.save(torch.export.export(near_tie_model(), (torch.zeros(1, 3, 32, 32),)), checkpoint)
    config = ExportConfig(
        model=ModelSpec(checkpoint=str(checkpoint), input_shape=(1, 3, 32, 32)),
        data=DataSpec(dataset_dir=str(folder / "data"), num_calib_samples=8, num_eval_samples=12, num_workers=0,
                      labels_file=str(labels)),
        variants=("none", "float16", "dynamic", "int8", "int16x8"),
        output_dir=str(folder / "out"),
        latency_threads=(1, 2),
    )  # fmt: skip
    return run_export(config).to_dict()


def record_benchmark_runs(report: dict, checkpoint, dataset, user=None, settings=((100, 0), (50, 1), (200, 2))) -> list:
    """Finished runs of ``checkpoint`` on ``dataset`` that all carry ``report``, one per ``(calibration samples,
    seed)``; the compare page tells them apart by those columns and their ids."""
    runs = []
    for samples, seed in settings:
        runs.append(ConversionRun.objects.create(
            checkpoint=checkpoint, dataset=dataset, variants="none,float16,dynamic,int8,int16x8",
            num_calib_samples=samples, seed=seed, status=ConversionRun.Status.SUCCEEDED, report=report,
            model_name=checkpoint.name, model_version=checkpoint.version, dataset_name=dataset.name if dataset else "",
            created_by=user, duration_s=12.0, stage="done", progress=1.0, log="converted\n" * 1000,
            config={"model": {"checkpoint": "near_tie.pt2"}}, primary_variant="int8",
        ))  # fmt: skip
    return runs


def record_compare_runs(report: dict, user=None) -> tuple[list, ConversionRun]:
    """Three finished runs of ``near_tie v2`` carrying ``report`` (calibration samples 100, 50, 200; seeds 0, 1, 2)
    and one failed run of it: what the compare page tests look at."""
    from conversions.models import Checkpoint, Dataset

    ckpt = Checkpoint.objects.create(name="near_tie", version=2, architecture="x:build", input_shape=[1, 3, 32, 32])
    ds = Dataset.objects.create(name="colours", source="server", path="/data/colours")
    finished = record_benchmark_runs(report, ckpt, ds, user)
    failed = ConversionRun.objects.create(
        checkpoint=ckpt, dataset=ds, variants="int8", model_name=ckpt.name, model_version=ckpt.version,
        dataset_name=ds.name, status=ConversionRun.Status.FAILED, error="onnx2tf could not convert op GridSample",
        log="x\n" * 1000, created_by=user,
    )  # fmt: skip
    return finished, failed
