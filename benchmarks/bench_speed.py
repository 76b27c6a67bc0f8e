"""End-to-end conversion time, stage by stage: quantweb's verified int8 export beside the plain path.

    .venv/bin/python benchmarks/bench_speed.py [--models tv_resnet50,tv_vit_b_16] [--pairs 1] [--calib 32]
        [--jsonl speed.jsonl] [--timeout 1800] [--only quantweb|plain]

The plain path is what a user does without quantweb, with onnx2tf's own defaults: ``onnx2tf.convert`` on
the exported ``.onnx`` (its onnxsim passes, strict mode, a SavedModel and its float32/float16 files on
disk), then ``TFLiteConverter.from_saved_model`` with the same calibration images for a full-int8 file. It
verifies nothing. quantweb's path is ``run_export`` as the zoo runs it (float32 + int8, verified against
PyTorch, per-layer error table, TFLite Micro check, metadata). Both start from the same zoo model, each in
its own child process, alternating in pairs (ours first in odd pairs, plain first in even ones) so that a
noisy neighbour costs both sides alike. Seconds are wall time; run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_zoo import PHOTOS, engine_version, route_attempts, zoo_config  # noqa: E402


def _calibration(name: str, count: int):
    from benchmarks.zoo.models import MODELS, photo_batch

    return photo_batch(PHOTOS, MODELS[name][0].size, count).numpy()


def ours(name: str, calib: int) -> dict:
    """In the child: quantweb's export, with the engine's own stage seconds."""
    import torch

    from benchmarks.zoo.models import prepare
    from conversions.engine.pipeline import run_export

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"speed-{name}-") as tmp:
        ckpt = Path(tmp) / f"{name}.pth"
        torch.save(prepare(name, PHOTOS).state_dict(), ckpt)
        prepared = time.perf_counter() - started
        config = zoo_config(name, ckpt, Path(tmp) / "out", calib, evaluation=16)
        report = run_export(config)
    stages = {k: v for k, v in report.timings_s.items() if k not in ("calibrate_convert", "total")}
    return {
        "total": round(time.perf_counter() - started - prepared, 1),
        "stages": stages,
        "route": report.conversion_route.get("route"),
        "attempts": route_attempts(report),
    }


def plain(name: str, calib: int) -> dict:
    """In the child: torch -> ONNX -> onnx2tf (its defaults) -> SavedModel -> TFLiteConverter full int8."""
    import numpy as np
    import torch

    from benchmarks.zoo.models import MODELS, prepare
    from conversions.engine.convert.onnx_export import export_onnx
    from conversions.engine.convert.tf_routes import _own_sample_images, set_quiet_tf_logging

    set_quiet_tf_logging()
    spec = MODELS[name][0]
    model = prepare(name, PHOTOS)
    images = _calibration(name, calib)
    stages: dict[str, float] = {}
    # onnx2tf's own onnxsim runs as a subprocess found on PATH: the venv's, as a user's shell would have it.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with tempfile.TemporaryDirectory(prefix=f"plain-{name}-") as tmp:
        started = time.perf_counter()
        onnx_path = export_onnx(model, (1, 3, spec.size, spec.size), Path(tmp) / f"{name}.onnx")
        stages["onnx"] = round(time.perf_counter() - started, 2)
        del model
        torch.set_num_threads(torch.get_num_threads())
        import onnx2tf
        import tensorflow as tf

        saved = Path(tmp) / "saved_model"
        t = time.perf_counter()
        # onnx2tf would download MS-COCO images for its checks; this machine is offline, so it gets ours.
        with _own_sample_images(images[:8]):
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(saved), non_verbose=True)
        stages["onnx2tf (onnxsim, strict, SavedModel)"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        nhwc = np.transpose(images, (0, 2, 3, 1)).astype(np.float32)

        def representative():
            for i in range(len(nhwc)):
                yield [nhwc[i : i + 1]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        data = converter.convert()
        stages["int8 calibrate+convert"] = round(time.perf_counter() - t, 2)
        total = round(time.perf_counter() - started, 1)
    return {"total": total, "stages": stages, "int8_bytes": len(data)}


SIDES = {"quantweb": ours, "plain": plain}


def run_side(side: str, name: str, args: argparse.Namespace) -> dict:
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as result:
        path = result.name
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--one", name, "--calib", str(args.calib),
           "--result", path]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"side": side, "model": name, "error": f"timed out after {args.timeout} s"}
    wall = round(time.perf_counter() - started, 1)
    try:
        row = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        row = {"error": f"exited {proc.returncode} without a result: {tail[-500:]}"}
    finally:
        Path(path).unlink(missing_ok=True)
    return {"side": side, "model": name, "process_wall": wall, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tv_resnet50,tv_vit_b_16")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--calib", type=int, default=32)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--jsonl", help="append every measurement as a JSON line")
    parser.add_argument("--only", choices=sorted(SIDES),
                        help="time one path alone (the plain path's strict onnx2tf takes many minutes on ViT-B)")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        try:
            row = SIDES[args.side](args.one, args.calib)
        except Exception as err:  # a failure of either path is a row of the table, not a crash of the run
            row = {"error": f"{type(err).__name__}: {' '.join(str(err).split())[:400]}"}
        Path(args.result).write_text(json.dumps(row, default=str))
        return

    version = engine_version()
    rows: list[dict] = []
    for name in args.models.split(","):
        for pair in range(args.pairs):
            order = ("quantweb", "plain") if pair % 2 == 0 else ("plain", "quantweb")
            for side in [s for s in order if args.only in (None, s)]:
                row = run_side(side, name, args) | {"pair": pair, "engine_version": version}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps(row) + "\n")
    print()
    print(table(rows))


def table(rows: list[dict]) -> str:
    lines = ["| model | path | end to end s (median) | ratio to plain | stages (s, last pair) |", "|---|---|---|---|---|"]
    for name in dict.fromkeys(r["model"] for r in rows):
        medians = {}
        for side in SIDES:
            mine = [r for r in rows if r["model"] == name and r["side"] == side]
            totals = [r["total"] for r in mine if "total" in r]
            medians[side] = statistics.median(totals) if totals else None
            last = mine[-1] if mine else {}
            stages = ", ".join(f"{k} {v:g}" for k, v in (last.get("stages") or {}).items()) or last.get("error", "-")
            medians[side + "_stages"] = stages
        for side in SIDES:
            m, p = medians[side], medians["plain"]
            if m is None and not [r for r in rows if r["model"] == name and r["side"] == side]:
                continue  # that path was not timed (--only)
            ratio = f"{m / p:.2f}" if m and p else "-"
            lines.append(f"| {name} | {side} | {m if m is not None else '-'} | {ratio} | {medians[side + '_stages']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
