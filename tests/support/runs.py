"""Recorded runs for the portal's pages: many finished-looking runs, and real benchmark reports."""

from __future__ import annotations

import random
from pathlib import Path

from django.utils import timezone

from conversions.models import ConversionRun


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
