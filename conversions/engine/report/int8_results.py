"""Typed results of the int8 stage: activation ranges, bias correction, per-layer error, the accuracy guard.

They hang off the int8 ``VariantReport`` and are written into its ``extra`` object of the report JSON
(``records.to_json``), where the portal reads them back (``records.from_json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NarrowedRange:
    name: str = ""
    minmax: tuple[float, ...] = ()
    range: tuple[float, ...] = ()


@dataclass(frozen=True)
class GuardMeasure:
    """A model measured against the budget on the held-out images (or, for ranking, calibration images)."""

    value: float | None = None
    """The budget's metric (percent)."""
    drop: float | None = None
    """Points below the float model."""
    top1_agreement: float | None = None
    sqnr_db: float | None = None
    meets_budget: bool | None = None


@dataclass(frozen=True)
class CalibrationSummary:
    """How int8 activation ranges were chosen and how far the chosen ones differ from min/max."""

    method: str = ""
    default_method: str = ""
    percentile: float | None = None
    tensors: int = 0
    tensors_narrowed: int = 0
    median_range_ratio: float = 1.0
    samples: int = 0
    seconds: float = 0.0
    narrowed: tuple[NarrowedRange, ...] = ()
    """At most 20, narrowest first."""
    minmax_on_evaluation: GuardMeasure | None = None
    """With a budget: what the converter's own min/max ranges would have scored, for comparison."""


@dataclass(frozen=True)
class BiasCorrection:
    ops: int = 0
    passes: int = 0
    samples: int = 0
    seconds: float = 0.0
    sqnr_before: float | None = None
    sqnr_after: float | None = None
    """Output SQNR (dB) against the float model on the same calibration samples, before and after."""
    source: str = "calibration images"


@dataclass(frozen=True)
class LayerError:
    """One op of the int8 model against its float twin."""

    depth: int = 0
    """Execution order: the network's depth."""
    op: str = ""
    name: str = ""
    """The op's output tensor name: the converter's node name (what a float-fallback denylist matches)."""
    label: str = ""
    module: str | None = None
    """The PyTorch module, matched by value through the ONNX graph."""
    onnx_node: str | None = None
    sqnr_db: float | None = None
    rel_rmse: float | None = None
    input_sqnr_db: float | None = None
    added_noise_db: float | None = None
    """How much worse the op's output is than the worst of its inputs: where error enters."""
    float_min: float | None = None
    float_max: float | None = None
    dtype: str = ""
    scale: float | None = None
    zero_point: int | None = None
    params: int = 0
    param_share: float = 0.0
    macs: int = 0
    mac_share: float = 0.0
    in_float: bool = False


@dataclass(frozen=True)
class LayerErrors:
    samples: int = 0
    source: str = "calibration images"
    module_names: str = "not available"
    float_ops: int = 0
    ops: tuple[LayerError, ...] = ()
    damage_order: tuple[int, ...] = ()
    """Indices into ``ops``, worst output SQNR first."""

    def worst(self, limit: int) -> list[LayerError]:
        return [self.ops[k] for k in self.damage_order[:limit] if k < len(self.ops)]


@dataclass(frozen=True)
class KeptFloat:
    """An op the guard kept in float, and why."""

    name: str = ""
    op: str | None = None
    module: str | None = None
    label: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RankedUnit:
    rank: int = 0
    tensor: str = ""
    ops: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    gain_db: float = 0.0
    """Output SQNR gained on calibration images when this unit is kept in float."""
    measured: str = ""


@dataclass(frozen=True)
class GuardStep:
    step: int = 0
    action: str = ""
    float_ops: int = 0
    ops: tuple[str, ...] = ()
    value: float | None = None
    drop: float | None = None
    top1_agreement: float | None = None
    sqnr_db: float | None = None
    meets_budget: bool | None = None
    size_bytes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class GuardCost:
    size_bytes_before: int = 0
    size_bytes_after: int = 0
    size_ratio: float | None = None
    latency_ms_before: float | None = None
    latency_ms_after: float | None = None
    latency_ratio: float | None = None


@dataclass(frozen=True)
class GuardResult:
    """What ``--max-drop`` did: the budget, the measurement before and after, and the ops kept in float."""

    max_drop: float | None = None
    max_fallback: float | None = None
    metric: str = ""
    metric_label: str = ""
    reference: str = ""
    evaluation_samples: int = 0
    metric_samples: int = 0
    ranking_samples: int = 0
    ranking_source: str = ""
    before: GuardMeasure | None = None
    after: GuardMeasure | None = None
    budget_met: bool | None = None
    """None when the model's output has no top-1 to budget."""
    result: str = ""
    """``int8``, ``int8 with float fallback``, ``int16x8`` or ``best attempt (over budget)``."""
    kept_float: tuple[KeptFloat, ...] = ()
    kept_float_fraction: float | None = None
    total_ops: int | None = None
    ranking: tuple[RankedUnit, ...] = ()
    ranking_evaluations: int = 0
    ranking_baseline_sqnr_db: float | None = None
    steps: tuple[GuardStep, ...] = ()
    cost: GuardCost | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    message: str = ""
