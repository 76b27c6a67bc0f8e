"""Typed results of a conversion: what the report JSON, the run page and the tests read.

``ExportReport.to_dict()`` is the ``*_report.json`` content and the ``ConversionRun.report`` JSON field.
For the primary variant the per-variant fields are also copied to the top level, so a single-variant
report reads ``report["fidelity"]["top1_agreement"]`` directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LatencyStats:
    median: float
    p90: float
    threads: int
    runs: int


@dataclass
class Fidelity:
    """Agreement of a ``.tflite`` model with the PyTorch model on the same held-out inputs."""

    samples: int
    top1_agreement: float | None
    """Percent of samples whose top-1 class is the same (None for non-classifier outputs)."""
    confident_samples: int
    confident_top1_agreement: float | None
    """The same on samples the PyTorch model classifies with probability >= 0.5."""
    top5_agreement: float | None
    """Percent of samples whose PyTorch top-1 is within the TFLite top-5."""
    sqnr_db: float
    """Mean signal-to-quantization-noise ratio of the outputs, 10*log10(|ref|^2 / |ref - out|^2)."""
    max_abs_error: float = 0.0


@dataclass
class VariantReport:
    variant: str
    output: str
    size_bytes: int
    sha256: str
    float32_size_bytes: int | None
    size_ratio: float | None
    input: dict[str, Any]
    output_details: dict[str, Any]
    latency_ms: dict[str, LatencyStats]
    """Keyed by thread count as a string ("1", "2")."""
    fidelity: Fidelity | None
    fully_integer: bool
    float_ops: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportReport:
    model: dict[str, Any]
    variants: list[VariantReport]
    pytorch: dict[str, Any]
    """PyTorch reference figures on the evaluation inputs (accuracy where labels exist)."""
    calibration: dict[str, Any]
    evaluation: dict[str, Any]
    dataset: dict[str, Any] | None
    conversion_route: dict[str, Any]
    timings_s: dict[str, float]
    versions: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    intermediate_files: dict[str, str] = field(default_factory=dict)

    def budget_misses(self) -> list[str]:
        """One message per variant whose accuracy guard could not meet ``--max-drop`` (its file is then
        written as ``*_over_budget.tflite``); empty when every budget held or none was set."""
        return [
            f"{v.extra['guard'].get('message', 'the accuracy budget was missed')} Best attempt: {v.output}."
            for v in self.variants
            if (v.extra.get("guard") or {}).get("budget_met") is False
        ]

    def variant(self, name: str) -> VariantReport:
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        primary = _primary(self.variants)
        if primary is not None:
            flat = dataclasses.asdict(primary)
            flat["latency_ms"] = _first_latency(primary)
            flat["float32_latency_ms"] = self._float32_latency()
            flat["float32_fidelity"] = self._float32_fidelity()
            for key, value in flat.items():
                data.setdefault(key, value)
        return data

    def _float32_latency(self) -> dict[str, Any] | None:
        try:
            return _first_latency(self.variant("none"))
        except KeyError:
            by_threads = self.pytorch.get("float32_latency_ms") or {}
            return by_threads.get("1") or next(iter(by_threads.values()), None)

    def _float32_fidelity(self) -> dict[str, Any] | None:
        try:
            fid = self.variant("none").fidelity
        except KeyError:
            return self.pytorch.get("float32_fidelity")
        return dataclasses.asdict(fid) if fid else None


def _primary(variants: list[VariantReport]) -> VariantReport | None:
    """The variant a single-variant summary talks about: the most quantized one asked for."""
    order = ["int8", "int16x8", "dynamic", "float16", "none"]
    ranked = sorted(variants, key=lambda v: order.index(v.variant) if v.variant in order else 99)
    return ranked[0] if ranked else None


def _first_latency(v: VariantReport) -> dict[str, Any] | None:
    if not v.latency_ms:
        return None
    key = "1" if "1" in v.latency_ms else sorted(v.latency_ms)[0]
    return dataclasses.asdict(v.latency_ms[key])
