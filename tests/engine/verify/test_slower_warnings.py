"""An int8 file slower than float32 is named with the cause: its slow ops, or XNNPACK refusing the whole file."""

from __future__ import annotations

from conversions.engine.report.results import LatencyStats, PyTorchReference, VariantReport
from conversions.engine.verify.variants import slower_than_float, slower_warnings

FLOAT32 = PyTorchReference(float32_latency_ms={"1": LatencyStats(median=10.0, p90=11.0, threads=1, runs=30)})


def _int8(median: float, **extra) -> VariantReport:
    return VariantReport(
        variant="int8",
        latency_ms={"1": LatencyStats(median=median, p90=median, threads=1, runs=30, xnnpack=not extra)},
        op_counts={"CONV_2D": 20, "SOFTMAX": 12, "GELU": 12},
        extra=extra,
    )


def test_a_slower_file_on_xnnpack_names_its_slow_ops():
    (line,) = slower_warnings(slower_than_float([_int8(22.8)], FLOAT32))
    assert "2.28x its latency at 1 thread, XNNPACK)" in line
    assert "ops responsible: SOFTMAX x12, GELU x12" in line and "refused" not in line


def test_a_file_xnnpack_refused_names_the_refusal_as_the_cause():
    refused = "XNNPACK prepare failed: Node number 553 (TfLiteXNNPackDelegate) failed to prepare"
    (line,) = slower_warnings(slower_than_float([_int8(22.8, xnnpack_refused=refused)], FLOAT32))
    assert "1 thread, builtin kernels)" in line
    assert "XNNPACK refused to prepare it, so it ran on LiteRT's builtin kernels" in line


def test_a_file_as_fast_as_float32_raises_nothing():
    assert slower_warnings(slower_than_float([_int8(9.0)], FLOAT32)) == []
