"""The bundled EfficientNet-Lite0 int8 ready for a device: ImageNet labels and normalisation in the file, and
its arena and exactness in the TFLite Micro interpreter (figures in the README, "Ready for the device")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conversions.engine.metadata import embed
from conversions.engine.report.summary import format_summary

pytestmark = pytest.mark.slow


def test_efficientnet_lite0_int8_runs_in_tflite_micro_in_under_2_mb_of_arena(lite0_report):
    int8 = lite0_report.variant("int8")
    micro = int8.targets.tflite_micro
    assert micro.supported and micro.unsupported_ops == ()
    assert 1.5e6 < micro.arena_bytes < 2.0e6, micro.arena_bytes  # measured 1.70 MB
    assert micro.flash_bytes == Path(int8.output).stat().st_size
    assert micro.samples == 4 and micro.max_abs_diff_vs_litert is not None
    assert micro.bit_exact == (micro.max_abs_diff_vs_litert == 0.0)


def test_efficientnet_lite0_file_carries_imagenet_labels_and_its_normalisation(lite0_report):
    int8 = lite0_report.variant("int8")
    info, files = embed.read(Path(int8.output).read_bytes())
    names = files["labels.txt"].decode().splitlines()
    assert len(names) == 1000 and names[0] == "tench" and names[207] == "golden retriever"
    image = info.inputs[0]
    assert image.image_size == (224, 224) and image.color_space == "RGB"
    np.testing.assert_allclose(image.mean, [123.675, 116.28, 103.53], rtol=1e-5)
    np.testing.assert_allclose(image.std, [58.395, 57.12, 57.375], rtol=1e-5)


def test_predictions_are_shown_by_imagenet_class_name(lite0_report):
    dis = lite0_report.pytorch.disagreements
    assert dis.examples, "some held-out photos disagree"
    names = set(Path(embed.__file__).parents[1].joinpath("model", "imagenet_classes.txt").read_text().splitlines())
    shown = [p.name for ex in dis.examples for p in (*ex.pytorch_top3, *ex.variant_top3)]
    assert shown and all(name in names for name in shown)
    summary = format_summary(lite0_report)
    assert f"PyTorch {dis.examples[0].pytorch_top3[0].name}" in summary
