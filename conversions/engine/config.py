"""Typed configuration of one conversion, parsed once from CLI flags or the new-run form.

Everything here is JSON-serialisable (``to_dict`` / ``from_dict``) so a ``ConversionRun`` stores it in a
JSON field and a re-run rebuilds exactly the same config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def parse_input_shape(text: str | None, input_size: int = 224) -> tuple[int, ...]:
    """``"1,3,224,224"`` -> ``(1, 3, 224, 224)``; no text gives ``(1, 3, size, size)``."""
    if not text:
        return (1, 3, int(input_size), int(input_size))
    try:
        shape = tuple(int(p) for p in str(text).replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{{input_shape}} {text!r} is not a comma-separated list of integers, e.g. 1,3,224,224") from None
    if len(shape) != 4 or any(d <= 0 for d in shape):
        raise ConfigError(f"{{input_shape}} {text!r} must be four positive integers N,C,H,W, e.g. 1,3,224,224")
    return shape


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
    num_calib_samples: int = 100
    num_eval_samples: int = 100
    seed: int = 0
    preprocess: str = "auto"
    preprocess_overrides: dict[str, Any] = field(default_factory=dict)
    """Custom ``mean``/``std``/``scale``/``resize``/``crop``/``interpolation`` over the preset."""
    num_workers: int | None = None
    labels_file: str | None = None
    """One class name per line in output order; maps class folders to outputs for labeled accuracy."""


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
    latency_runs: int = 30
    latency_threads: tuple[int, ...] = (1,)
    debug: bool = False
    calibration_method: str = DEFAULT_CALIBRATION
    """int8 activation ranges: ``minmax`` (the converter's), ``percentile`` or ``mse`` (int8/ranges.py)."""
    max_drop: float | None = None
    """Accuracy budget for int8 in points (int8/guard.py); None measures and reports, never falls back."""
    max_fallback: float = 0.2
    """At most this fraction of ops may be kept in float to meet ``max_drop``."""
    metadata: bool = True
    """Write TFLite metadata (normalisation, input size, output description, labels) into every ``.tflite``."""
    bias_correction: bool = False
    """Fold each int8 conv/FC op's mean output error on calibration images into its bias (int8/bias_correction.py)."""

    def __post_init__(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise ConfigError(f"{{calibration_method}} {self.calibration_method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
        if self.max_drop is not None and self.max_drop < 0:
            raise ConfigError(f"{{max_drop}} {self.max_drop} must be 0 or more points")
        if not 0.0 <= self.max_fallback <= 1.0:
            raise ConfigError(f"{{max_fallback}} {self.max_fallback} must be a fraction between 0 and 1, e.g. 0.2")
        if any(v not in VARIANT_NAMES for v in self.variants):  # aliases (``none`` is float32) become names
            object.__setattr__(self, "variants", parse_variants(self.variants))
        if self.io_type not in IO_TYPES:
            raise ConfigError(f"{{io_type}} {self.io_type!r} is not one of {', '.join(IO_TYPES)}")
        if self.task not in TASKS:
            raise ConfigError(f"{{task}} {self.task!r} is not one of {', '.join(TASKS)}")
        if self.detect_head not in DETECT_HEADS:
            raise ConfigError(f"{{detect_head}} {self.detect_head!r} is not one of {', '.join(DETECT_HEADS)}")

    @property
    def needs_calibration(self) -> bool:
        return any(v in CALIBRATED_VARIANTS for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExportConfig":
        data = dict(data)
        model = dict(data.pop("model"))
        model["input_shape"] = tuple(model.get("input_shape", (1, 3, 224, 224)))
        dataspec = DataSpec(**data.pop("data", {}))
        for key in ("formats", "latency_threads"):
            if key in data:
                data[key] = tuple(data[key])
        if "variants" in data:  # configs stored before float32 had one name call it "none"
            data["variants"] = parse_variants(data["variants"])
        return cls(model=ModelSpec(**model), data=dataspec, **data)
