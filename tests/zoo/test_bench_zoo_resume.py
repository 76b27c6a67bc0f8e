"""``bench_zoo.py --resume``: rows measured on the same engine version are kept, others are run again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.bench_zoo import cpu_label, engine_version, resumable_rows  # noqa: E402


def test_only_rows_of_this_engine_version_are_resumed_and_a_cut_line_is_ignored(tmp_path: Path) -> None:
    jsonl = tmp_path / "zoo.jsonl"
    jsonl.write_text(
        json.dumps({"model": "a", "engine_version": "old", "int8": False}) + "\n"
        + json.dumps({"model": "a", "engine_version": "new", "int8": True}) + "\n"
        + json.dumps({"model": "b", "engine_version": "old", "int8": True}) + "\n"
        + '{"model": "c", "engine_ver'
    )
    rows = resumable_rows(jsonl, "new")
    assert list(rows) == ["a"] and rows["a"]["int8"] is True


def test_the_engine_version_names_the_last_commit_of_the_engine() -> None:
    version = engine_version()
    head = subprocess.run(
        ["git", "log", "-1", "--format=%h", "--", "conversions", "benchmarks/zoo", "benchmarks/bench_zoo.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert version.split("+")[0] == head


def test_a_resumed_run_with_every_row_measured_runs_no_model(tmp_path: Path) -> None:
    jsonl = tmp_path / "zoo.jsonl"
    row = {"model": "tiny_vit", "engine_version": engine_version(), "cpu": cpu_label(), "int8": True, "fully_integer": True,
           "route": "onnxsim+onnx2tf", "float32_sqnr_db": 120.0, "int8_sqnr_db": 20.0, "seconds": 1.0}
    jsonl.write_text(json.dumps(row) + "\n")
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_zoo.py"), "--models", "tiny_vit", "--jsonl", str(jsonl),
         "--resume"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resuming: 1 of 1 rows already measured" in out.stdout
    assert "| tiny_vit | onnxsim+onnx2tf | 120.0 |" in out.stdout
    assert jsonl.read_text().count("\n") == 1  # nothing was run, nothing appended


def test_rows_measured_on_another_cpu_are_not_resumed(tmp_path: Path) -> None:
    jsonl = tmp_path / "zoo.jsonl"
    jsonl.write_text(
        json.dumps({"model": "a", "engine_version": "new", "cpu": "Xeon (avx2; 2 cores)", "int8": True}) + "\n"
        + json.dumps({"model": "b", "engine_version": "new", "cpu": cpu_label(), "int8": True}) + "\n"
    )
    assert list(resumable_rows(jsonl, "new", cpu_label())) == ["b"]
    assert "cores)" in cpu_label()
