"""Representative data: bounded memory, forking after TensorFlow, save/load, the standalone module, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.data_fixtures import build_imagefolder, write_image

from conversions.engine.data.generator import RepresentativeDataGenerator
from conversions.engine.errors import OutputExistsError

REPO = Path(__file__).resolve().parents[3]


def _peak_while_streaming(root: Path, count: int) -> tuple[int, int]:
    gen = RepresentativeDataGenerator(root, num_samples=count, input_size=64, num_workers=2)
    tracemalloc.start()
    try:
        seen = 0
        for seen, _ in enumerate(gen, 1):
            if seen == 1:
                time.sleep(1.0)  # a slow consumer: unbounded prefetch would pile every decoded image up now
        return seen, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_is_bounded_by_batches_not_dataset_size(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    for i in range(3000):
        Image.fromarray(pixels).save(root / f"{i:04d}.png", compress_level=0)
    small_n, small_peak = _peak_while_streaming(root, 300)
    big_n, big_peak = _peak_while_streaming(root, 3000)
    sample_bytes = 3 * 64 * 64 * 4
    assert (small_n, big_n) == (300, 3000)
    assert big_peak < 40 * sample_bytes + 2_000_000, f"peak {big_peak:,} B for 3000 images"  # all: 147 MB
    assert big_peak < small_peak * 1.5 + 500_000


def test_worker_processes_work_after_importing_tensorflow(rd_imagefolder: Path) -> None:
    code = (
        "import sys, tensorflow, numpy as np\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from conversions.engine.data.generator import RepresentativeDataGenerator as G\n"
        f"a = np.stack(list(G({str(rd_imagefolder)!r}, num_samples=12, input_size=32, num_workers=2)))\n"
        f"b = np.stack(list(G({str(rd_imagefolder)!r}, num_samples=12, input_size=32, num_workers=0)))\n"
        "assert np.array_equal(a, b), 'differs'\n"
        "print('ok', a.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok (12, 3, 32, 32)" in out.stdout


def test_save_and_load_round_trip(rd_imagefolder: Path, tmp_path: Path) -> None:
    gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=6, input_size=16, layout="NHWC")
    saved = gen.save(tmp_path / "calib.npz")
    loaded = RepresentativeDataGenerator.load(tmp_path / "calib.npz")
    assert loaded.shape == (6, 16, 16, 3) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, saved)
    np.testing.assert_array_equal(loaded, np.stack(list(gen)))
    with pytest.raises(OutputExistsError):
        gen.save(tmp_path / "calib.npz")
    gen.save(tmp_path / "calib.npz", force=True)


def test_evaluation_stream_yields_items_disjoint_from_calibration(rd_imagefolder: Path) -> None:
    gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=5, num_eval_samples=4, input_size=8)
    pairs = list(gen.iter_evaluation())
    assert [item for _, item in pairs] == gen.evaluation_items
    assert pairs[0][0].shape == (3, 8, 8)


def test_standalone_module_regenerates_the_same_arrays_without_quantweb(rd_imagefolder: Path, tmp_path: Path) -> None:
    gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=7, input_size=24, layout="NHWC", seed=3)
    gen.save(tmp_path / "engine.npz")
    module = gen.create_module(tmp_path / "my_dataset.py")
    text = module.read_text()
    assert "conversions" not in text.replace("conversions.engine", "")  # no import of this project
    run = subprocess.run([sys.executable, "-I", str(module), "--output", str(tmp_path / "module.npz")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    with np.load(tmp_path / "engine.npz") as a, np.load(tmp_path / "module.npz") as b:
        assert sorted(a.files) == sorted(b.files) == ["files", "samples", "spec"]
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import my_dataset\n"
            "batches = list(my_dataset.representative_dataset()); print(len(batches), batches[0][0].shape)")
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "7 (1, 24, 24, 3)", run.stderr


def _cli(*args: str) -> subprocess.CompletedProcess:
    env_cmd = [sys.executable, str(REPO / "manage.py"), "representative_data", *args]
    return subprocess.run(env_cmd, capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={"DJANGO_SETTINGS_MODULE": "quantweb.settings", "PATH": "/usr/bin:/bin"})


def test_cli_prints_summary_and_batches_and_writes_outputs(rd_imagefolder: Path, tmp_path: Path) -> None:
    out = _cli("--data-dir", str(rd_imagefolder), "--num-samples", "4", "--input-shape", "1,1,28,28",
               "--layout", "nhwc", "--mean", "0.5", "--std", "0.5", "--test-batches", "2",
               "--output", str(tmp_path / "c.npz"), "--create-module", str(tmp_path / "m.py"))
    assert out.returncode == 0, out.stderr
    assert "ImageFolder, split 'val'" in out.stdout
    assert "batch 1: shape (1, 28, 28, 1) float32" in out.stdout and "batch 2" not in out.stdout
    assert RepresentativeDataGenerator.load(tmp_path / "c.npz").shape == (4, 28, 28, 1)
    with np.load(tmp_path / "c.npz") as data:
        assert json.loads(str(data["spec"]))["mean"] == [0.5]
    assert (tmp_path / "m.py").exists()


def test_cli_reports_dataset_errors_without_a_traceback(tmp_path: Path) -> None:
    write_image(tmp_path / "d" / "a.jpg")
    out = _cli("--data-dir", str(tmp_path / "d"), "--split", "val")
    assert out.returncode != 0
    assert "CommandError" in out.stderr and "no split folders" in out.stderr and "Traceback" not in out.stderr


def test_cli_rejects_bad_flag_values(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "c", {"a": 2, "b": 2})
    out = _cli("--data-dir", str(root), "--mean", "x")
    assert out.returncode != 0 and "--mean 'x' is not" in out.stderr


def test_breaking_out_of_the_stream_stops_the_workers(rd_imagefolder: Path) -> None:
    import gc
    import multiprocessing

    gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=30, input_size=16, num_workers=2)
    for i, _ in enumerate(gen):
        if i == 1:
            break
    gc.collect()
    assert multiprocessing.active_children() == []


def _dies_in_a_worker(parent: int, path: str) -> np.ndarray:
    import os

    if os.getpid() != parent and path.endswith("_003.png"):
        os._exit(3)  # as a native crash in a decoder would end the worker
    return np.full((2,), float(len(path)), dtype=np.float32)


def test_a_dead_decode_worker_does_not_hang_the_stream(tmp_path: Path) -> None:
    import functools
    import os

    from conversions.engine.data.streaming import stream

    paths = [str(write_image(tmp_path / f"img_{i:03d}.png")) for i in range(40)]
    started = time.monotonic()
    results = list(stream(paths, functools.partial(_dies_in_a_worker, os.getpid()), workers=2, sample_shape=(2,)))
    assert time.monotonic() - started < 60
    assert [index for index, _, _ in results] == list(range(40))
    assert all(array is not None and array[0] == len(paths[i]) for i, array, _ in results)
