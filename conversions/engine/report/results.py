"""Typed results of a conversion: what the report JSON, the run page, the API and the tests read.

Every result is a frozen dataclass. ``ExportReport.to_dict()`` is the ``*_report.json`` content and the
``ConversionRun.report`` JSON field; ``ExportReport.from_dict()`` rebuilds it from either, including reports
stored by earlier versions (``SCHEMA_VERSION``; what is missing takes its default, see ``records``). For
the primary variant the per-variant fields are also copied to the top level of the JSON, so a
single-variant report reads ``report["fidelity"]["top1_agreement"]`` directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from conversions.engine.report.device_results import EmbeddedMetadata, Targets
from conversions.engine.report.int8_results import (
    BiasCorrection,
    CalibrationSummary,
    GuardResult,
    LayerErrors,
)
from conversions.engine.report.records import from_json, to_json
from conversions.engine.variants import primary

SCHEMA_VERSION = 2
"""1: reports without a version (float32 could be called ``none``); 2: typed results."""


@dataclass(frozen=True)
class LatencyStats:
    median: float = 0.0
    p90: float = 0.0
    threads: int = 1
    runs: int = 0
    xnnpack: bool = True
    """False when XNNPACK refused or crashed on the model and it was timed with the reference kernels."""


@dataclass(frozen=True)
class Fidelity:
    """Agreement of a ``.tflite`` model with the PyTorch model on the same held-out inputs."""

    samples: int = 0
    top1_agreement: float | None = None
    """Percent of samples whose top-1 class is the same (None for non-classifier outputs)."""
    confident_samples: int = 0
    confident_top1_agreement: float | None = None
    """The same on samples the PyTorch model classifies with probability >= 0.5."""
    top5_agreement: float | None = None
    """Percent of samples whose PyTorch top-1 is within the TFLite top-5."""
    sqnr_db: float | None = None
    """Mean signal-to-quantization-noise ratio of the outputs, 10*log10(|ref|^2 / |ref - out|^2)."""
    max_abs_error: float = 0.0


@dataclass(frozen=True)
class VariantReport:
    variant: str
    output: str = ""
    size_bytes: int = 0
    sha256: str = ""
    float32_size_bytes: int | None = None
    size_ratio: float | None = None
    input: dict[str, Any] = field(default_factory=dict)
    output_details: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, LatencyStats] = field(default_factory=dict)
    """Keyed by thread count as a string ("1", "2")."""
    fidelity: Fidelity | None = None
    fully_integer: bool = False
    float_ops: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None
    """Labeled top-1/top-5 (with drops against PyTorch), or a detector's mAP (``task: detect``)."""
    calibration_method: str | None = None
    calibration: CalibrationSummary | None = None
    bias_correction: BiasCorrection | None = None
    layer_errors: LayerErrors | None = None
    guard: GuardResult | None = None
    metadata: EmbeddedMetadata | None = None
    """The TFLite metadata inside the file, as read back (None with ``--no-metadata``)."""
    targets: Targets | None = None
    """Device targets the file was run on (``tflite_micro`` for int8 files)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What a stage adds that has no field of its own (a detector's head and pictures)."""

    TYPED_EXTRA = ("calibration_method", "calibration", "bias_correction", "layer_errors", "guard")
    """Fields written inside the JSON's ``extra`` object, where reports have always kept them."""

    def latency(self, threads: str = "1") -> LatencyStats | None:
        """At ``threads``, or at the fewest threads measured."""
        if not self.latency_ms:
            return None
        return self.latency_ms.get(threads) or self.latency_ms[min(self.latency_ms, key=_thread_key)]

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in self.TYPED_EXTRA}
        extra = dict(data.pop("extra"))
        for key in self.TYPED_EXTRA:
            value = getattr(self, key)
            if value is not None:
                extra[key] = to_json(value)
        data["extra"] = extra
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VariantReport":
        data = dict(data) if isinstance(data, dict) else {}
        extra = dict(data.get("extra") or {}) if isinstance(data.get("extra"), dict) else {}
        typed = {key: extra.pop(key) for key in cls.TYPED_EXTRA if key in extra}
        if "layer_errors" in typed:
            typed["layer_errors"] = _older_layer_errors(typed["layer_errors"])
        name = data.get("variant")
        data = {**data, **typed, "extra": extra, "variant": "float32" if name == "none" else str(name or "?")}
        return from_json(cls, data)


@dataclass(frozen=True)
class Prediction:
    index: int = 0
    name: str = ""
    p: float | None = None


@dataclass(frozen=True)
class DisagreementExample:
    file: str = ""
    thumbnail: str | None = None
    """A ``data:image/jpeg`` URI, so the report needs no files beside it."""
    pytorch_top3: tuple[Prediction, ...] = ()
    variant_top3: tuple[Prediction, ...] = ()


@dataclass(frozen=True)
class Disagreements:
    """Held-out images where the most quantized variant and PyTorch disagree."""

    variant: str = ""
    count: int = 0
    examples: tuple[DisagreementExample, ...] = ()


@dataclass(frozen=True)
class PyTorchReference:
    """PyTorch's own figures on the evaluation inputs, and the float32 file's against them."""

    evaluation_samples: int = 0
    float32_fidelity: Fidelity | None = None
    float32_latency_ms: dict[str, LatencyStats] = field(default_factory=dict)
    float32_size_bytes: int | None = None
    accuracy: dict[str, Any] | None = None
    disagreements: Disagreements | None = None
    detection: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExportReport:
    model: dict[str, Any]
    variants: tuple[VariantReport, ...]
    pytorch: PyTorchReference = field(default_factory=PyTorchReference)
    calibration: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] | None = None
    conversion_route: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    intermediate_files: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def budget_misses(self) -> list[str]:
        """One message per variant whose accuracy guard could not meet ``max_drop`` (its file is then
        written as ``*_over_budget.tflite``); empty when every budget held or none was set. The messages name
        inputs as ``{field}`` placeholders, for ``errors.render``."""
        return [
            f"{v.guard.message or 'the accuracy budget was missed'} Best attempt: {v.output}."
            for v in self.variants
            if v.guard is not None and v.guard.budget_met is False
        ]

    def variant(self, name: str) -> VariantReport:
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(name)

    @property
    def primary(self) -> VariantReport | None:
        """The variant a single-variant summary talks about: the most quantized one asked for."""
        name = primary(v.variant for v in self.variants)
        return self.variant(name) if name else None

    def float32_latency(self, threads: str = "1") -> LatencyStats | None:
        by_threads = self.pytorch.float32_latency_ms
        return by_threads.get(threads) or (by_threads[min(by_threads, key=_thread_key)] if by_threads else None)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}
        data["variants"] = [v.to_dict() for v in self.variants]
        main = self.primary
        if main is not None:
            flat = main.to_dict()
            latency = main.latency()
            flat["latency_ms"] = to_json(latency) if latency else None
            reference = self.float32_latency()
            flat["float32_latency_ms"] = to_json(reference) if reference else None
            fid = self.pytorch.float32_fidelity
            flat["float32_fidelity"] = to_json(fid) if fid else None
            for key, value in flat.items():
                data.setdefault(key, value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExportReport":
        data = data if isinstance(data, dict) else {}
        variants = tuple(VariantReport.from_dict(v) for v in data.get("variants") or [] if isinstance(v, dict))
        names = {f.name for f in dataclasses.fields(cls)}
        base = from_json(cls, {"model": {}, **{k: v for k, v in data.items() if k in names and k != "variants"}, "variants": []})
        return dataclasses.replace(base, variants=variants, model=dict(base.model))


_LAYER_ALIASES = {"label": ("name", "op_name"), "module": ("pytorch_module",)}


def _older_layer_errors(value: Any) -> Any:
    """Early reports stored per-layer error as a bare list of ops, some keys under other names."""
    ops = value if isinstance(value, list) else value.get("ops") if isinstance(value, dict) else None
    if not isinstance(ops, list):
        return value
    rows = []
    for depth, op in enumerate(o for o in ops if isinstance(o, dict)):
        row = {"depth": depth, **op}
        for key, aliases in _LAYER_ALIASES.items():
            if row.get(key) is None:
                row[key] = next((op[a] for a in aliases if op.get(a) is not None), None)
        rows.append(row)
    return {**(value if isinstance(value, dict) else {}), "ops": rows}


def _thread_key(threads: str) -> tuple[bool, int]:
    return (not str(threads).isdigit(), int(threads) if str(threads).isdigit() else 0)


__all__ = [
    "SCHEMA_VERSION",
    "Disagreements",
    "DisagreementExample",
    "ExportReport",
    "Fidelity",
    "LatencyStats",
    "Prediction",
    "PyTorchReference",
    "VariantReport",
]
