"""The bundled EfficientNet-Lite0 on the bundled photos with ``--max-drop 1``: a correct per-layer report, no
fallback where none is needed, and >= 98 % top-1 agreement on the confidently classified held-out photos."""

from __future__ import annotations

import pytest

from conversions.engine.report.records import to_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite0(lite0_report):
    return lite0_report.variant("int8")


def test_no_fallback_is_added_when_the_budget_already_holds(lite0):
    guard = to_json(lite0.guard)
    assert guard["budget_met"] is True and guard["result"] == "int8"
    assert guard["kept_float"] == [] and guard["steps"] == []
    assert lite0.fully_integer
    assert lite0.fidelity.confident_samples >= 40
    assert lite0.fidelity.confident_top1_agreement >= 98.0


def test_per_layer_report_covers_every_op_with_pytorch_names(lite0):
    layers = to_json(lite0.layer_errors)
    rows = layers["ops"]
    assert len(rows) == sum(n for op, n in lite0.op_counts.items() if op not in ("QUANTIZE", "DEQUANTIZE"))
    assert all(r["module"] for r in rows)
    assert rows[0]["module"] == "_conv_stem" and rows[-1]["module"] == "_fc"
    assert sum(1 for r in rows if r["module"].endswith("_project_conv")) == 16
    assert all(r["sqnr_db"] is not None and 0 < r["sqnr_db"] < 60 for r in rows)
    assert sum(r["param_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
    assert sum(r["macs"] for r in rows) == pytest.approx(385e6, rel=0.05)  # EfficientNet-Lite0: ~0.39 GMACs
    # Activation ranges and scales are the int8 file's own: ReLU6 outputs span [0, 6] on a 6/255 grid.
    relu6 = [r for r in rows if r["op"] == "DEPTHWISE_CONV_2D"]
    assert all(r["float_min"] >= 0 and r["float_max"] <= 6.0 + 1e-4 for r in relu6)
    assert layers["damage_order"][0] in range(len(rows))
