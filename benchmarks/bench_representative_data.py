"""Images/second and peak memory of the representative-data stream against a naive PIL loop, same run.

    .venv/bin/python benchmarks/bench_representative_data.py [--sizes 100,2000] [--image 800x600] [--data-dir DIR]

Each (method, count) runs in a fresh subprocess so its peak memory is its own: the kernel's peak RSS of
that process and of its largest decode worker (pages shared after fork count in both, so the sum is an
upper bound). The naive loop is what a calibration script usually does:
``Image.open(p).convert("RGB")``, resize the shorter side to 256, center-crop 224, normalise, one image at
a time in one process. The engine does the same preprocessing (imagenet preset, NCHW float32) with JPEG
draft decoding and forked decode workers; its time includes detection and sampling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def make_dataset(root: Path, count: int, size: tuple[int, int]) -> None:
    """Photo-like JPEGs (smooth colour fields plus grain), 10 classes, in ``root/val/<class>/``."""
    rng = np.random.default_rng(0)
    for i in range(count):
        path = root / "val" / f"class{i % 10}" / f"{i:05d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
            size, Image.Resampling.BICUBIC
        )
        grain = rng.normal(0, 6, (size[1], size[0], 3))
        pixels = np.clip(np.asarray(small, dtype=np.float32) + grain, 0, 255).astype(
            np.uint8
        )
        Image.fromarray(pixels).save(path, quality=90)


def naive(paths: list[str]) -> int:
    done = 0
    for path in paths:
        image = Image.open(path).convert("RGB")
        w, h = image.size
        ratio = 256 / min(w, h)
        image = image.resize(
            (round(w * ratio), round(h * ratio)), Image.Resampling.BILINEAR
        )
        w, h = image.size
        left, top = round((w - 224) / 2), round((h - 224) / 2)
        image = image.crop((left, top, left + 224, top + 224))
        x = (np.asarray(image, dtype=np.float32) / 255.0 - MEAN) / STD
        x = np.ascontiguousarray(x.transpose(2, 0, 1))
        done += 1
    return done


def engine(root: str, count: int, workers: int) -> int:
    from conversions.engine.data.generator import RepresentativeDataGenerator

    gen = RepresentativeDataGenerator(
        root,
        num_samples=count,
        preprocess="imagenet",
        input_size=224,
        num_workers=workers,
    )
    return sum(1 for _ in gen)


def peak_rss_mb() -> tuple[float, float]:
    """(this process's peak RSS since exec, the largest reaped child's peak RSS) in MiB.

    ``VmHWM`` rather than ``ru_maxrss`` for this process: the latter keeps the pre-exec peak of the forked
    driver.
    """
    status = Path("/proc/self/status").read_text()
    me = (
        next(
            int(line.split()[1])
            for line in status.splitlines()
            if line.startswith("VmHWM:")
        )
        / 1024
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, children


def run_one(method: str, root: str, count: int) -> dict:
    """Child-process entry: time one method on the first ``count`` images of the sample."""
    sys.path.insert(0, str(REPO))
    workers = 0
    cpu_start = _cpu_seconds()
    if method == "naive":
        from conversions.engine.data.generator import RepresentativeDataGenerator

        paths = [
            it.path
            for it in RepresentativeDataGenerator(
                root, num_samples=count, num_workers=0
            ).calibration_items
        ]
        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        done = naive(paths)
        elapsed = time.perf_counter() - start
    else:
        workers = int(method.split(":")[1])
        start = time.perf_counter()
        done = engine(root, count, workers)
        elapsed = time.perf_counter() - start
    parent, child = peak_rss_mb()
    return {
        "method": method,
        "count": done,
        "seconds": elapsed,
        "parent_mb": parent,
        "worker_mb": child if workers else 0.0,
        "workers": workers,
        "cpu_ms_per_image": (_cpu_seconds() - cpu_start) / max(done, 1) * 1000,
    }


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the decode workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,2000")
    parser.add_argument("--image", default="800x600", help="WxH of the generated JPEGs")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="reuse/create the dataset here (default: a temp dir)",
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.one:
        method, count = args.one.rsplit("@", 1)
        print(json.dumps(run_one(method, args.data_dir, int(count))))
        return
    width, height = (int(v) for v in args.image.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data_dir or tmp) / f"bench_{width}x{height}"
        make_dataset(root, max(sizes), (width, height))
        print(
            f"Representative data streaming: imagenet 224x224 NCHW float32 from {width}x{height} JPEGs; "
            f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}"
        )
        print(
            f"load average before: {os.getloadavg()[0]:.2f} (other processes compete for the same CPUs)"
        )
        print(
            f"{'images':>6}  {'method':<28} {'img/s':>8} {'seconds':>8} {'CPU ms/img':>10} "
            f"{'peak RSS MiB (parent + workers)':>32} {'vs naive':>9}"
        )
        for count in sizes:
            base = None
            for method, label in (
                ("naive", "naive PIL loop, 1 process"),
                ("engine:0", "engine, in-process"),
                ("engine:2", "engine, 2 decode workers"),
            ):
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    f"{method}@{count}",
                    "--data-dir",
                    str(root),
                ]
                result = json.loads(
                    subprocess.run(
                        cmd, check=True, capture_output=True, text=True, cwd=REPO
                    ).stdout
                )
                rate = result["count"] / result["seconds"]
                base = base or rate
                mem = f"{result['parent_mb']:.0f}"
                if result["workers"]:
                    mem += f" + {result['workers']} x {result['worker_mb']:.0f}"
                print(
                    f"{result['count']:>6}  {label:<28} {rate:>8.1f} {result['seconds']:>8.2f} "
                    f"{result['cpu_ms_per_image']:>10.2f} {mem:>32} "
                    f"{rate / base:>8.2f}x",
                    flush=True,
                )
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
