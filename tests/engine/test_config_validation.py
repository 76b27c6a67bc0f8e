"""Every input is checked where it is parsed: the engine's config refuses an out-of-range value with one sentence
on the field, and a command given one prints that sentence with its own flag, records no run and writes no file."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from support.data_fixtures import build_imagefolder
from support.workers import worker_environment

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec, parse_input_shape
from conversions.engine.errors import ConfigError
from conversions.management.commands.representative_data import Command as RepresentativeData
from conversions.models import ConversionRun
from engine.conftest import assert_flags_exist

# ------------------------------------------------------------------------------------ the engine's config


@pytest.mark.parametrize(
    "make, field, template",
    [
        (lambda: DataSpec(num_calib_samples=-1), "num_calib_samples", "{num_calib_samples} -1 must be 1 or more images, e.g. 100"),
        (lambda: DataSpec(num_calib_samples=0), "num_calib_samples", "{num_calib_samples} 0 must be 1 or more images, e.g. 100"),
        (lambda: DataSpec(num_calib_samples=2**31), "num_calib_samples", "{num_calib_samples} 2147483648 must be at most 2147483647 images"),
        (lambda: DataSpec(num_eval_samples=-1), "num_eval_samples", "{num_eval_samples} -1 must be 0 or more images, e.g. 100"),
        (lambda: DataSpec(seed=-1), "seed", "{seed} -1 must be 0 or more, e.g. 0"),
        (lambda: DataSpec(seed=2**31), "seed", "{seed} 2147483648 must be at most 2147483647, e.g. 0"),
        (lambda: DataSpec(num_workers=-1), "num_workers", "{num_workers} -1 must be 0 or more decode processes"),
        (lambda: DataSpec(dataset_type="video"), "dataset_type", "{dataset_type} 'video' is not one of auto, classification, detection, images"),
        (lambda: DataSpec(preprocess="vgg"), "preprocess", "{preprocess} 'vgg' is not one of auto, imagenet, yolo, inception, raw"),
        (lambda: ModelSpec(input_shape=(1, 3, 0, 224)), "input_shape", "{input_shape} 1,3,0,224 must be four positive integers N,C,H,W, e.g. 1,3,224,224"),
        (lambda: ModelSpec(input_shape=(3, 224, 224)), "input_shape", "{input_shape} 3,224,224 must be four positive integers"),
        (lambda: parse_input_shape(None, 0), "input_size", "{input_size} 0 must be 1 or more pixels, e.g. 224"),
    ],
)  # fmt: skip
def test_a_spec_refuses_an_out_of_range_value_on_its_field(make, field: str, template: str) -> None:
    with pytest.raises(ConfigError) as err:
        make()
    assert err.value.field == field
    assert template in err.value.template


def _config(**kwargs) -> ExportConfig:
    return ExportConfig(model=ModelSpec(model="efficientnet-lite0"), **kwargs)


@pytest.mark.parametrize(
    "kwargs, field, template",
    [
        ({"latency_runs": 0}, "latency_runs", "{latency_runs} 0 must be 1 or more timed runs, e.g. 30"),
        ({"latency_threads": (1, 0)}, "latency_threads", "{latency_threads} 0 must be 1 or more threads, e.g. 1"),
        ({"latency_threads": ()}, "latency_threads", "{latency_threads} is empty; give at least one thread count, e.g. 1"),
        ({"max_drop": -0.5}, "max_drop", "{max_drop} -0.5 must be 0 or more points, e.g. 1"),
        ({"max_drop": float("nan")}, "max_drop", "{max_drop} nan must be 0 or more points"),
        ({"max_fallback": 1.5}, "max_fallback", "{max_fallback} 1.5 must be at most 1 (a fraction of the ops), e.g. 0.2"),
        ({"io_type": "int4"}, "io_type", "{io_type} 'int4' is not one of float32, uint8, int8"),
        ({"task": "segment"}, "task", "{task} 'segment' is not one of auto, classify, detect"),
        ({"detect_head": "magic"}, "detect_head", "{detect_head} 'magic' is not one of auto, normalize, split, none"),
        ({"calibration_method": "guess"}, "calibration_method", "{calibration_method} 'guess' is not one of minmax, percentile, mse"),
        ({"formats": ("pb",)}, "formats", "{formats} 'pb' is not one of onnx, saved_model, tflite, all"),
        ({"variants": ("int9",)}, "variants", "{variants} 'int9' is not a quantization; choose from float32 (or none)"),
        ({"variants": ("float16", "int8"), "output": "m.tflite"}, "output",
         "{output} m.tflite names one file but {variants} asks for 2 (float16, int8); give {output_dir} for several"),
        ({"data": DataSpec(dataset_dir="images", num_eval_samples=0)}, "num_eval_samples",
         "{num_eval_samples} 0 leaves no held-out images to verify the variants on; give 1 or more, e.g. 100"),
    ],
)  # fmt: skip
def test_an_export_config_refuses_an_out_of_range_value_on_its_field(kwargs: dict, field: str, template: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(**kwargs)
    assert err.value.field == field
    assert template in err.value.template


def test_in_range_values_and_a_stored_config_pass_unchanged() -> None:
    config = _config(
        data=DataSpec(dataset_dir="images", num_calib_samples=1, num_eval_samples=1, seed=0, num_workers=0),
        latency_runs=1, latency_threads=(1, 2), max_drop=0.0, max_fallback=1.0,
    )  # fmt: skip
    assert ExportConfig.from_dict(config.to_dict()) == config
    assert DataSpec(num_eval_samples=0).num_eval_samples == 0, "representative data needs no held-out images"
    assert ModelSpec(input_shape=[1, 1, 28, 28]).input_shape == (1, 1, 28, 28), "a stored list comes back a tuple"


# --------------------------------------------------------------------------------- manage.py export_models


def _export_models(tmp_path: Path, *flags: str) -> None:
    """``export_models`` on a checkpoint that does not exist: a value that got past the checks fails at once
    (and records a failed run, which the tests count) instead of converting anything."""
    call_command(
        "export_models",
        "--checkpoint", str(tmp_path / "absent.pth"), "--model", "efficientnet-lite0",
        "--dataset-dir", str(tmp_path / "images"),
        "--output-dir", str(tmp_path / "out"),
        *flags,
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip


BAD_FLAGS = [
    # flags, what the message starts with
    (["--num-calib-samples", "-1"], "--num-calib-samples -1 must be 1 or more images, e.g. 100"),
    (["--num-calib-samples", "0"], "--num-calib-samples 0 must be 1 or more images"),
    (["--num-calib-samples", "3000000000"], "--num-calib-samples 3000000000 must be at most 2147483647 images"),
    (["--num-eval-samples", "-1"], "--num-eval-samples -1 must be 0 or more images"),
    (["--num-eval-samples", "0"], "--num-eval-samples 0 leaves no held-out images to verify the variants on"),
    (["--seed", "-1"], "--seed -1 must be 0 or more, e.g. 0"),
    (["--seed", "2147483648"], "--seed 2147483648 must be at most 2147483647"),
    (["--workers", "-1"], "--workers -1 must be 0 or more decode processes"),
    (["--latency-runs", "0"], "--latency-runs 0 is too few for the median and p90 to mean something; give 30 or more"),
    (["--threads", "0"], "--threads 0 must be 1 or more threads, e.g. 1"),
    (["--threads", "1,-2"], "--threads -2 must be 1 or more threads"),
    (["--threads", "one"], "--threads 'one' is not a list of integers, e.g. 1,2"),
    (["--input-shape", "1,3,0,224"], "--input-shape '1,3,0,224' must be four positive integers N,C,H,W"),
    (["--input-size", "0"], "--input-size 0 must be 1 or more pixels, e.g. 224"),
    (["--dataset-type", "video"], "--dataset-type 'video' is not one of auto, classification, detection, images"),
    (["--preprocess", "vgg"], "--preprocess 'vgg' is not one of auto, imagenet, yolo, inception, raw"),
    (["--io", "int4"], "--io 'int4' is not one of float32, uint8, int8"),
    (["--task", "segment"], "--task 'segment' is not one of auto, classify, detect"),
    (["--detect-head", "magic"], "--detect-head 'magic' is not one of auto, normalize, split, none"),
    (["--calibration", "guess"], "--calibration 'guess' is not one of minmax, percentile, mse"),
    (["--format", "pb"], "--format 'pb' is not one of onnx, saved_model, tflite, all"),
    (["--quantize", "int9"], "--quantize 'int9' is not a quantization; choose from"),
    (["--max-drop", "-1"], "--max-drop -1.0 must be 0 or more points, e.g. 1"),
    (["--max-drop", "nan"], "--max-drop nan must be 0 or more points"),
    (["--max-fallback", "1.5"], "--max-fallback 1.5 must be at most 1 (a fraction of the ops), e.g. 0.2"),
    (["--max-fallback", "-0.1"], "--max-fallback -0.1 must be 0 or more"),
    (["--scale", "0"], "--scale '0' must be positive, e.g. 1/255 or 1"),
    (["--scale", "1/0"], "--scale '1/0' is not a number"),
    (["--std", "0.2,0,0.2"], "--std '0.2,0,0.2' contains 0"),
    (["--mean", "x"], "--mean 'x' is not a comma-separated list of numbers"),
    (["--resize", "0"], "--resize '0' is not a size; give N or WxH in pixels"),
    (["--crop", "1.5"], "--crop '1.5': a fraction must be in (0, 1]"),
    (["--crop", "-3"], "--crop '-3' is not a size"),
    (["--interpolation", "cubicle"], "--interpolation 'cubicle' is not one of"),
    (["--quantize", "float16,int8", "--output", "m.tflite"], "--output m.tflite names one file but --quantize asks for 2"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("flags, expected", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_an_out_of_range_flag_is_one_line_and_records_nothing(tmp_path: Path, flags: list[str], expected: str) -> None:
    runs = ConversionRun.objects.count()

    with pytest.raises(CommandError) as err:
        _export_models(tmp_path, *flags)

    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message and "Traceback" not in message
    assert "{" not in message, "every placeholder is worded as a flag"
    assert_flags_exist(message)
    assert ConversionRun.objects.count() == runs
    assert list(tmp_path.iterdir()) == [], "no output, no report, no folder"


@pytest.mark.django_db(transaction=True)
def test_the_command_line_prints_the_one_line_and_exits_1(tmp_path: Path) -> None:
    """What a person sees in the shell: Django's ``CommandError:`` line and nothing else, no run in the
    database the command was pointed at."""
    out = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "export_models", "--model", "efficientnet-lite0",
         "--dataset-dir", str(tmp_path / "images"), "--output-dir", str(tmp_path / "out"),
         "--num-calib-samples", "-1"],
        capture_output=True, text=True, timeout=120, cwd=settings.BASE_DIR, env=worker_environment(),
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr == "CommandError: --num-calib-samples -1 must be 1 or more images, e.g. 100\n"
    assert out.stdout == ""
    assert not ConversionRun.objects.exists()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- manage.py representative_data


@pytest.mark.parametrize("flag", ["--num-calib-samples", "--num-samples"])
def test_representative_data_refuses_a_bad_sample_count_before_writing(tmp_path: Path, flag: str) -> None:
    root = build_imagefolder(tmp_path / "images", {"a": 2, "b": 2})
    with pytest.raises(CommandError) as err:
        call_command("representative_data", "--data-dir", str(root), flag, "-1",
                     "--output", str(tmp_path / "calib.npz"), "--create-module", str(tmp_path / "calib.py"),
                     stdout=io.StringIO())  # fmt: skip
    # the older spelling is answered in the main one, the flag both commands share
    assert str(err.value) == "--num-calib-samples -1 must be 1 or more images, e.g. 100"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--seed", "-1"], "--seed -1 must be 0 or more, e.g. 0"),
        (["--workers", "-1"], "--workers -1 must be 0 or more decode processes"),
        (["--num-eval-samples", "-1"], "--num-eval-samples -1 must be 0 or more images"),
        (["--dataset-type", "video"], "--dataset-type 'video' is not one of auto, classification, detection, images"),
        (["--preprocess", "vgg"], "--preprocess 'vgg' is not one of auto, imagenet, yolo, inception, raw"),
        (["--input-size", "0"], "--input-size 0 must be 1 or more pixels, e.g. 224"),
        (["--input-shape", "1,3,224"], "--input-shape '1,3,224' must be four positive integers"),
    ],
)  # fmt: skip
def test_representative_data_words_the_engines_checks_with_its_flags(tmp_path: Path, flags: list[str], expected: str) -> None:
    with pytest.raises(CommandError) as err:
        call_command("representative_data", "--data-dir", str(tmp_path / "images"), *flags, stdout=io.StringIO())
    assert str(err.value).startswith(expected), str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_num_samples_stays_an_alias_of_num_calib_samples() -> None:
    parser = RepresentativeData().create_parser("manage.py", "representative_data")
    assert parser.parse_args(["--data-dir", "d", "--num-samples", "7"]).num_calib_samples == 7
    assert parser.parse_args(["--data-dir", "d", "--num-calib-samples", "8"]).num_calib_samples == 8
    assert parser.parse_args(["--data-dir", "d"]).num_calib_samples == DataSpec().num_calib_samples
