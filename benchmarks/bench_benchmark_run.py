"""Benchmark run (all variants at once) against the seed's workflow (one export_models per variant).

Runs, side by side on the bundled default (EfficientNet-Lite0 on 432 crops of the bundled photos, made in a
temporary folder by demo/make_demo_crops.py), for each calibration
size: one `export_models --quantize float32,float16,dynamic,int8,int16x8` and five separate single-variant
exports, each in its own process (as a user would run them). Prints wall time and peak RSS of every process,
the ratio of the all-variants run to the int8 export alone and to the five separate exports, and the
calibration cost per image from the int8 conversion timings.

    .venv/bin/python benchmarks/bench_benchmark_run.py [--calib 100,300] [--eval 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("float32", "float16", "dynamic", "int8", "int16x8")
FOUR = ("float32", "float16", "dynamic", "int8")
"""All but int16x8, whose CPU kernels are reference code (~100x slower per image than int8 here)."""


def make_dataset(folder: Path, per_photo: int) -> Path:
    """More crops of the bundled photos than the repo ships, so 300 calibration + held-out images fit."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "demo/make_demo_crops.py"),
            "--out",
            str(folder),
            "--per-photo",
            str(per_photo),
            "--seed",
            "1",
            "--no-manifest",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return folder


def run_export(variants: str, calib: int, evals: int, out: Path, data: Path) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "manage.py"),
        "export_models",
        "--model",
        "efficientnet-lite0",
        "--dataset-dir",
        str(data),
        "--num-calib-samples",
        str(calib),
        "--num-eval-samples",
        str(evals),
        "--quantize",
        variants,
        "--threads",
        "1",
        "--no-record",
        "--force",
        "--output-dir",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export of {variants} failed:\n{proc.stderr.read()[-3000:]}")
    reports = sorted(out.glob("*report.json"))
    report = json.loads(reports[0].read_text()) if reports else {}
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "timings": report.get("timings_s", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calib", default="100,300", help="calibration sizes")
    parser.add_argument(
        "--eval",
        type=int,
        default=100,
        help="held-out images (the demo set has 288 in all)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.calib.split(",")]
    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "crops", per_photo=24)
        total = len(list(data.glob("*.jpg")))
        print(f"dataset: {total} crops of the bundled photos in {data}")
        for calib in sizes:
            evals = min(args.eval, total - calib)
            results[calib] = {}
            # Interleaved: the all-variants run sits between the single runs so noise hits both alike.
            order = ["int8", "all", "float32", "float16", "four", "dynamic", "int16x8"]
            for name in order:
                variants = {"all": ",".join(VARIANTS), "four": ",".join(FOUR)}.get(
                    name, name
                )
                out = Path(tmp) / f"{calib}-{name}"
                results[calib][name] = run_export(variants, calib, evals, out, data)
                r = results[calib][name]
                print(
                    f"calib {calib:4d} eval {evals:3d} {name:8s} {r['wall_s']:7.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB",
                    flush=True,
                )
    print()
    print(
        "| calibration images | variants in one run | one run (s) | int8 alone (s) | separate exports (s) | "
        "one run / int8 | one run / separate | peak RSS one run (MB) | peak RSS max single (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for calib, r in results.items():
        for key, members in (("all", VARIANTS), ("four", FOUR)):
            separate = sum(r[v]["wall_s"] for v in members)
            print(
                f"| {calib} | {','.join(members)} | {r[key]['wall_s']:.1f} | {r['int8']['wall_s']:.1f} | {separate:.1f} | "
                f"{r[key]['wall_s'] / r['int8']['wall_s']:.2f} | {r[key]['wall_s'] / separate:.2f} | "
                f"{r[key]['peak_rss_mb']:.0f} | {max(r[v]['peak_rss_mb'] for v in members):.0f} |"
            )
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        t_lo = results[lo]["int8"]["timings"].get("convert_int8")
        t_hi = results[hi]["int8"]["timings"].get("convert_int8")
        if t_lo is not None and t_hi is not None:
            print(
                f"\ncalibration cost: int8 convert {t_lo:.1f} s at {lo} images, {t_hi:.1f} s at {hi}: "
                f"{(t_hi - t_lo) / (hi - lo) * 1000:.0f} ms per extra image"
            )
    for calib, r in results.items():
        print(
            f"int8 export end to end at {calib} calibration images: {r['int8']['wall_s']:.1f} s "
            f"(stages: {r['int8']['timings']})"
        )


if __name__ == "__main__":
    main()
