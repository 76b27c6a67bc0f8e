"""Typed configuration of one conversion, parsed once from CLI flags or the new-run form.

Everything here is JSON-serialisable (``to_dict`` / ``from_dict``) so a ``ConversionRun`` stores it in a
JSON field and a re-run rebuilds exactly the same config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversions.engine.data.preprocess import PRESETS
from conversions.engine.data.structure import DATASET_TYPES
from conversions.engine.errors import ConfigError
from conversions.engine.variants import NAMES as VARIANT_NAMES
from conversions.engine.variants import VARIANTS, parse_variants

CALIBRATED_VARIANTS = tuple(v.name for v in VARIANTS if v.calibrated)
CALIBRATION_METHODS = ("minmax", "percentile", "mse")
DEFAULT_CALIBRATION = "percentile"
"""How int8 activation ranges are chosen; measured best on both benchmark models (BENCHMARKS.md, Accuracy guard)."""
IO_TYPES = ("float32", "uint8", "int8")
FORMATS = ("onnx", "saved_model", "tflite", "all")
TASKS = ("auto", "classify", "detect")
"""``auto``: detect for an Ultralytics checkpoint, or a YOLO dataset with a model returning ``[B, 4 + nc, N]``."""
DETECT_HEADS = ("auto", "normalize", "split", "none")
"""How a detector's box+score concat is made int8-safe (detection/head.py); ``none`` is the naive export."""
PREPROCESS_NAMES = ("auto", *PRESETS)
"""``auto``: in an export the model's own (imagenet for the built-in); without a model, yolo for YOLO data,
else imagenet."""

DEFAULT_CALIBRATION_SAMPLES = 100
"""Images sampled to calibrate int8 activation ranges; every front end starts from this one."""
DEFAULT_EVALUATION_SAMPLES = 100
"""Held-out images every variant is verified on; every front end starts from this one."""
DEFAULT_LATENCY_RUNS = 30
"""Timed runs per model: fewer make the median and p90 noise, so the command line asks for at least this."""
DEFAULT_MAX_FALLBACK = 0.2
LARGEST_INTEGER = 2**31 - 1
"""Counts and seeds beyond this are typos, and the run record stores them as 32-bit integers."""


@dataclass(frozen=True)
class Limit:
    """The range a numeric input must fall in, and a valid value to suggest when it does not."""

    least: float
    most: float | None
    example: float
    unit: str = ""

    def check(self, name: str, value: float) -> None:
        """Raises a ``ConfigError`` on ``{name}`` that says the value, the range and an example.

        Written as ``not value >= least`` so that NaN, which compares false with everything, is refused too.
        """
        if not value >= self.least:
            raise ConfigError(f"{{{name}}} {value} must be {self.least} or more{self.unit}, e.g. {self.example}")
        if self.most is not None and not value <= self.most:
            raise ConfigError(f"{{{name}}} {value} must be at most {self.most}{self.unit}, e.g. {self.example}")


LIMITS: dict[str, Limit] = {
    "input_size": Limit(1, None, 224, " pixels"),
    "num_calib_samples": Limit(1, LARGEST_INTEGER, DEFAULT_CALIBRATION_SAMPLES, " images"),
    "num_eval_samples": Limit(0, LARGEST_INTEGER, DEFAULT_EVALUATION_SAMPLES, " images"),
    "seed": Limit(0, LARGEST_INTEGER, 0),
    "num_workers": Limit(0, None, 2, " decode processes (0 decodes in this process)"),
    "latency_runs": Limit(1, None, DEFAULT_LATENCY_RUNS, " timed runs"),
    "latency_threads": Limit(1, None, 1, " threads"),
    "max_drop": Limit(0, None, 1, " points"),
    "max_fallback": Limit(0, 1, DEFAULT_MAX_FALLBACK, " (a fraction of the ops)"),
}
"""Every numeric input's range, by its ``FIELD_NAMES`` name: the dataclasses below check against it, and a
front end may ask it about one field (the portal form does, so each field gets its own message)."""


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raises a ``ConfigError`` on ``{name}`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{{{name}}} {value!r} is not one of {', '.join(choices)}")


def parse_input_shape(text: str | None, input_size: int = 224) -> tuple[int, ...]:
    """``"1,3,224,224"`` -> ``(1, 3, 224, 224)``; no text gives ``(1, 3, size, size)``."""
    if not text:
        LIMITS["input_size"].check("input_size", input_size)
        return (1, 3, int(input_size), int(input_size))
    try:
        shape = tuple(int(p) for p in str(text).replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{{input_shape}} {text!r} is not a comma-separated list of integers, e.g. 1,3,224,224") from None
    _check_shape(shape, repr(text))
    return shape


def _check_shape(shape: tuple[int, ...], shown: str) -> None:
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise ConfigError(f"{{input_shape}} {shown} must be four positive integers N,C,H,W, e.g. 1,3,224,224")


@dataclass(frozen=True)
class ModelSpec:
    """Where the weights are and how to build the architecture they belong to."""

    checkpoint: str | None = None
    """A state dict, a wrapped checkpoint, a pickled module or a ``.pt2`` torch.export program."""
    model: str | None = None
    """``package.module:factory``, ``path/to/file.py:factory`` or a built-in name (``efficientnet-lite0``)."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = (1, 3, 224, 224)
    trust_checkpoint: bool = False
    """Allow what runs code: full unpickling, a ``.pt2`` with pickled payloads, a non-built-in architecture."""
    version: str = ""
    """The model's version, written into each file's metadata (the portal's checkpoint version)."""

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(d) for d in self.input_shape)
        except (TypeError, ValueError):
            raise ConfigError(f"{{input_shape}} {self.input_shape!r} is not a list of integers, e.g. 1,3,224,224") from None
        _check_shape(shape, ",".join(map(str, shape)))
        object.__setattr__(self, "input_shape", shape)

    @property
    def name(self) -> str:
        if self.checkpoint:
            return Path(self.checkpoint).stem
        return (self.model or "model").split(":")[-1].replace("/", "_")


@dataclass(frozen=True)
class DataSpec:
    """Which images feed calibration and verification, and how they are preprocessed."""

    dataset_dir: str | None = None
    dataset_type: str = "auto"
    split: str | None = None
    num_calib_samples: int = DEFAULT_CALIBRATION_SAMPLES
    num_eval_samples: int = DEFAULT_EVALUATION_SAMPLES
    seed: int = 0
    preprocess: str = "auto"
    preprocess_overrides: dict[str, Any] = field(default_factory=dict)
    """Custom ``mean``/``std``/``scale``/``resize``/``crop``/``interpolation`` over the preset."""
    num_workers: int | None = None
    labels_file: str | None = None
    """One class name per line in output order; maps class folders to outputs for labeled accuracy."""

    def __post_init__(self) -> None:
        check_choice("dataset_type", self.dataset_type, DATASET_TYPES)
        check_choice("preprocess", self.preprocess, PREPROCESS_NAMES)
        for name in ("num_calib_samples", "num_eval_samples", "seed"):
            LIMITS[name].check(name, getattr(self, name))
        if self.num_workers is not None:
            LIMITS["num_workers"].check("num_workers", self.num_workers)


@dataclass(frozen=True)
class ExportConfig:
    model: ModelSpec
    data: DataSpec = field(default_factory=DataSpec)
    task: str = "auto"
    """``classify`` or ``detect`` (verified by mAP, head made int8-safe); ``auto`` decides from model and data."""
    detect_head: str = "auto"
    """``normalize`` coordinates before the concat, ``split`` boxes and scores, or ``none``; ``auto`` is the
    measured best (BENCHMARKS.md, Detection)."""
    variants: tuple[str, ...] = ("int8",)
    """Canonical variant names (``variants.NAMES``); float32 is always built as the reference."""
    io_type: str = "float32"
    output: str | None = None
    """The ``.tflite`` path for a single variant; for several, ``output_dir`` names them."""
    output_dir: str | None = None
    output_template: str = "{stem}_{variant}.tflite"
    """File name of each variant inside ``output_dir``; ``{stem}`` is the model name, ``{variant}`` the variant's
    name. The portal passes ``<model>-v<version>-{variant}-r<run id>.tflite``."""
    formats: tuple[str, ...] = ("tflite",)
    force: bool = False
    latency_runs: int = DEFAULT_LATENCY_RUNS
    latency_threads: tuple[int, ...] = (1,)
    debug: bool = False
    calibration_method: str = DEFAULT_CALIBRATION
    """int8 activation ranges: ``minmax`` (the converter's), ``percentile`` or ``mse`` (int8/ranges.py)."""
    max_drop: float | None = None
    """Accuracy budget for int8 in points (int8/guard.py); None measures and reports, never falls back."""
    max_fallback: float = DEFAULT_MAX_FALLBACK
    """At most this fraction of ops may be kept in float to meet ``max_drop``."""
    metadata: bool = True
    """Write TFLite metadata (normalisation, input size, output description, labels) into every ``.tflite``."""
    bias_correction: bool = False
    """Fold each int8 conv/FC op's mean output error on calibration images into its bias (int8/bias_correction.py)."""

    def __post_init__(self) -> None:
        check_choice("calibration_method", self.calibration_method, CALIBRATION_METHODS)
        if self.max_drop is not None:
            LIMITS["max_drop"].check("max_drop", self.max_drop)
        LIMITS["max_fallback"].check("max_fallback", self.max_fallback)
        if any(v not in VARIANT_NAMES for v in self.variants):  # aliases (``none`` is float32) become names
            object.__setattr__(self, "variants", parse_variants(self.variants))
        check_choice("io_type", self.io_type, IO_TYPES)
        check_choice("task", self.task, TASKS)
        check_choice("detect_head", self.detect_head, DETECT_HEADS)
        for fmt in self.formats:
            check_choice("formats", fmt, FORMATS)
        LIMITS["latency_runs"].check("latency_runs", self.latency_runs)
        if not self.latency_threads:
            raise ConfigError("{latency_threads} is empty; give at least one thread count, e.g. 1")
        for threads in self.latency_threads:
            LIMITS["latency_threads"].check("latency_threads", threads)
        if self.output and len(self.variants) > 1:
            raise ConfigError(
                f"{{output}} {self.output} names one file but {{variants}} asks for {len(self.variants)} "
                f"({', '.join(self.variants)}); give {{output_dir}} for several"
            )
        if self.data.dataset_dir and not self.data.num_eval_samples:
            # An export verifies every variant on held-out images; with none it could only fail later, and
            # after the work of loading and calibrating.
            raise ConfigError(
                f"{{num_eval_samples}} {self.data.num_eval_samples} leaves no held-out images to verify the "
                f"variants on; give 1 or more, e.g. {DEFAULT_EVALUATION_SAMPLES}"
            )

    @property
    def needs_calibration(self) -> bool:
        return any(v in CALIBRATED_VARIANTS for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExportConfig":
        data = dict(data)
        model = dict(data.pop("model"))
        dataspec = DataSpec(**data.pop("data", {}))
        for key in ("formats", "latency_threads"):
            if key in data:
                data[key] = tuple(data[key])
        if "variants" in data:  # configs stored before float32 had one name call it "none"
            data["variants"] = parse_variants(data["variants"])
        return cls(model=ModelSpec(**model), data=dataspec, **data)
