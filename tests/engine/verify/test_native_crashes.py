"""A real abort in each native step (the calibration statistics, the per-layer interpreter, XNNPACK's prepare) becomes
a message, and where the step is optional the run still completes.

``QUANTWEB_NATIVE_ABORT=<step>`` makes that step's spawned child call ``os.abort()``: a real SIGABRT in a
real child process, the same death a native crash is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.engine_models import small_convnet

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.errors import ConversionError
from conversions.engine.pipeline import run_export
from conversions.engine.verify.native import ABORT_ENV, NativeCrash, run_isolated
from engine.conftest import SMALL_MODEL, SMALL_SHAPE

PHOTOS = Path(__file__).resolve().parents[3] / "demo" / "photos" / "crops"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("native") / "net.pth"
    torch.save(small_convnet().state_dict(), path)
    return path


def _config(checkpoint: Path, out: Path) -> ExportConfig:
    return ExportConfig(
        model=ModelSpec(str(checkpoint), SMALL_MODEL, input_shape=SMALL_SHAPE, trust_checkpoint=True),
        data=DataSpec(
            dataset_dir=str(PHOTOS), num_calib_samples=16, num_eval_samples=8
        ),
        variants=("int8",),
        output_dir=str(out),
        latency_runs=5,
    )


def test_a_child_that_aborts_is_a_native_crash_naming_the_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ABORT_ENV, "demo step")
    with pytest.raises(
        NativeCrash, match=r"^demo step crashed in native code \(SIGABRT\)$"
    ):
        run_isolated("demo step", sorted, [3, 1, 2])
    monkeypatch.delenv(ABORT_ENV)
    assert run_isolated("demo step", sorted, [3, 1, 2]) == [1, 2, 3]


def test_an_abort_in_xnnpack_prepare_falls_back_to_the_reference_kernels_and_says_so(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ABORT_ENV, "XNNPACK prepare")
    report = run_export(_config(checkpoint, tmp_path / "out"))
    int8 = report.variant("int8")
    assert Path(int8.output).is_file() and int8.fidelity.sqnr_db > 20
    assert int8.latency("1").xnnpack is False
    assert (
        int8.extra["xnnpack_refused"]
        == "XNNPACK prepare crashed in native code (SIGABRT)"
    )
    assert any(
        w.startswith(
            "int8: XNNPACK prepare crashed in native code (SIGABRT); it was verified and timed without XNNPACK"
        )
        for w in report.warnings
    )


def test_an_abort_in_the_per_layer_step_skips_the_table_with_a_warning(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ABORT_ENV, "the per-layer error step")
    report = run_export(_config(checkpoint, tmp_path / "out"))
    int8 = report.variant("int8")
    assert Path(int8.output).is_file() and int8.layer_errors is None
    assert int8.latency("1").xnnpack is True
    assert (
        "per-layer error table skipped: the per-layer error step crashed in native code (SIGABRT); "
        "the int8 model itself is unaffected and verified below"
    ) in report.warnings


def test_an_abort_in_calibration_is_a_conversion_error_naming_it(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ABORT_ENV, "calibration statistics")
    out = tmp_path / "out"
    with pytest.raises(ConversionError) as err:
        run_export(_config(checkpoint, out))
    assert str(err.value).startswith(
        "int8 calibration failed: calibration statistics crashed in native code (SIGABRT)."
    )
    assert not out.exists() or list(out.iterdir()) == []
