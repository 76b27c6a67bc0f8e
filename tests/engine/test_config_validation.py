"""Every input is checked where it is parsed: the engine's config refuses an out-of-range value with one sentence
on the field."""

from __future__ import annotations

import pytest

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec, parse_input_shape
from conversions.engine.errors import ConfigError

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
