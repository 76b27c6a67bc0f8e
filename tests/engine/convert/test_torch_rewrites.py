"""PReLU, hard-swish and LayerNorm rewritten before export: the same outputs as the originals, and an int8 file on ops
XNNPACK delegates (end to end through ``run_export`` on real images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from support.engine_models import ActivationNet

from conversions.engine.config import DataSpec, ExportConfig, ModelSpec
from conversions.engine.convert.torch_rewrites import (
    REWRITE_NOTE,
    ChannelPReLU,
    MeanAsMatmulLayerNorm,
    ScaledHardSwish,
    rewrite_for_int8,
)
from conversions.engine.pipeline import run_export
from conversions.engine.report.results import ExportReport
from engine.conftest import imagenet_input


def _real_inputs(dataset: Path, count: int = 12) -> torch.Tensor:
    files = sorted(dataset.glob("*/*.jpg"))[:count]
    return torch.from_numpy(np.concatenate([imagenet_input(f) for f in files]))


def _inputs(dataset: Path, shape: tuple[int, ...] = (8, 3, 32, 32)) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(shape) * 4, _real_inputs(dataset)]


def test_per_channel_prelu_gives_exactly_the_original_outputs(shapes_dataset: Path) -> None:
    prelu = nn.PReLU(3)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.1, -0.3, 1.7]))
    rewritten = rewrite_for_int8(prelu).module
    assert isinstance(rewritten, ChannelPReLU)
    for x in _inputs(shapes_dataset):
        assert torch.equal(rewritten(x), prelu(x))


def test_per_channel_prelu_after_a_linear_layer_broadcasts_over_features() -> None:
    prelu = nn.PReLU(5)
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.5, 0.5, 5))
    x = torch.randn(7, 5)
    assert torch.equal(rewrite_for_int8(prelu).module(x), prelu(x))


def test_a_prelu_with_one_slope_becomes_leaky_relu_with_that_slope(shapes_dataset: Path) -> None:
    prelu = nn.PReLU(4, init=0.2)
    rewritten = rewrite_for_int8(nn.Sequential(prelu)).module[0]
    assert isinstance(rewritten, nn.LeakyReLU)
    assert rewritten.negative_slope == pytest.approx(0.2)
    for x in _inputs(shapes_dataset, (8, 4, 16, 16))[:1] + [_real_inputs(shapes_dataset)[:, :1].repeat(1, 4, 1, 1)]:
        assert torch.equal(rewritten(x), prelu(x))


def test_hard_swish_gives_the_original_outputs_to_float_rounding(shapes_dataset: Path) -> None:
    rewritten = rewrite_for_int8(nn.Hardswish()).module
    assert isinstance(rewritten, ScaledHardSwish)
    edges = torch.tensor([-4.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 4.0])  # the kinks of relu6(x + 3)
    for x in [*_inputs(shapes_dataset), edges]:
        assert torch.allclose(rewritten(x), nn.functional.hardswish(x), rtol=1e-6, atol=1e-6)


def test_timm_hard_swish_modules_are_rewritten_too() -> None:
    # timm imports torchvision, whose PyPI wheel needs the zoo's shim beside this torch (test-only).
    from benchmarks.zoo.torchvision_shim import install

    install()
    from timm.layers import activations
    net = nn.Sequential(activations.HardSwish(), nn.Identity())
    rewritten = rewrite_for_int8(net)
    assert isinstance(rewritten.module[0], ScaledHardSwish)
    x = torch.randn(4, 8) * 4
    assert torch.allclose(rewritten.module(x), net(x), rtol=1e-6, atol=1e-6)


def test_layer_norm_over_the_last_dim_gives_the_original_outputs_to_float_rounding() -> None:
    torch.manual_seed(0)
    norm = nn.LayerNorm(48, eps=1e-6)
    nn.init.normal_(norm.weight, 1.0, 0.2)
    nn.init.normal_(norm.bias, 0.0, 0.2)
    rewritten = rewrite_for_int8(nn.Sequential(norm)).module[0]
    assert isinstance(rewritten, MeanAsMatmulLayerNorm)
    for x in (torch.randn(2, 17, 48) * 3 + 1, torch.randn(2, 7, 7, 48) * 0.02):  # tokens; Swin's NHWC maps
        assert torch.allclose(rewritten(x), norm(x), rtol=1e-5, atol=1e-5)


def test_channels_first_layer_norm_of_timm_and_torchvision_is_rewritten_with_the_same_outputs() -> None:
    from benchmarks.zoo.torchvision_shim import install

    install()
    from timm.layers import LayerNorm2d as TimmLayerNorm2d
    from torchvision.models.convnext import LayerNorm2d as TvLayerNorm2d

    torch.manual_seed(0)
    x = torch.randn(2, 32, 9, 9) * 2
    for norm in (TimmLayerNorm2d(32), TvLayerNorm2d(32, eps=1e-6)):
        nn.init.normal_(norm.weight, 1.0, 0.2)
        rewritten = rewrite_for_int8(nn.Sequential(norm)).module[0]
        assert isinstance(rewritten, MeanAsMatmulLayerNorm) and rewritten.channels_first
        assert torch.allclose(rewritten(x), norm(x), rtol=1e-5, atol=1e-5)


def test_a_layer_norm_over_several_dims_is_left_alone() -> None:
    net = nn.Sequential(nn.LayerNorm((4, 5)))
    assert rewrite_for_int8(net).module is net


def test_the_callers_module_is_left_as_it_was_and_each_kind_is_noted() -> None:
    net = ActivationNet()
    rewritten = rewrite_for_int8(net)
    assert sum(isinstance(m, (nn.PReLU, nn.Hardswish)) for m in net.modules()) == 4
    assert not any(isinstance(m, (nn.PReLU, nn.Hardswish)) for m in rewritten.module.modules())
    assert rewritten.notes == [
        f"{REWRITE_NOTE}: PReLU -> relu(x) + a*min(x, 0) (per-channel slopes, exact): 2 modules",
        f"{REWRITE_NOTE}: hard-swish -> (x/6)*relu6(x+3) (equal to float rounding): 1 module",
        f"{REWRITE_NOTE}: PReLU -> LeakyReLU (one slope, exact): 1 module",
    ]


def test_nothing_is_rewritten_without_int8_or_without_a_rewritable_activation() -> None:
    net = ActivationNet()
    assert rewrite_for_int8(net, ("float32", "float16")) == (net, [])
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert rewrite_for_int8(plain).module is plain


@pytest.fixture(scope="module")
def activation_run(shapes_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportReport:
    folder = tmp_path_factory.mktemp("activations")
    torch.manual_seed(0)
    torch.save(ActivationNet().state_dict(), folder / "activation_net.pth")
    spec = ModelSpec(str(folder / "activation_net.pth"), "tests/support/engine_models.py:activation_net",
                     input_shape=(1, 3, 32, 32), trust_checkpoint=True)
    data = DataSpec(str(shapes_dataset), num_calib_samples=32, num_eval_samples=32)
    return run_export(ExportConfig(model=spec, data=data, variants=("float32", "int8"), output_dir=str(folder)))


def test_a_run_says_which_rewrites_it_applied(activation_run: ExportReport) -> None:
    notes = [w for w in activation_run.warnings if w.startswith(REWRITE_NOTE)]
    assert [n.split(": ")[1] for n in notes] == [
        "PReLU -> relu(x) + a*min(x, 0) (per-channel slopes, exact)",
        "hard-swish -> (x/6)*relu6(x+3) (equal to float rounding)",
        "PReLU -> LeakyReLU (one slope, exact)",
        "division by a constant -> product by its reciprocal",
    ]


def test_the_rewritten_float32_file_still_matches_pytorch_above_40_db(activation_run: ExportReport) -> None:
    assert activation_run.variant("float32").fidelity.sqnr_db >= 40


def test_the_int8_file_has_no_op_xnnpack_lacks_in_int8(activation_run: ExportReport) -> None:
    int8 = activation_run.variant("int8")
    assert int8.fully_integer is True
    assert not {"PRELU", "HARD_SWISH", "DIV"} & set(int8.op_counts)
    assert {"LEAKY_RELU", "RELU", "MUL", "ADD"} <= set(int8.op_counts)
