"""Every route ``load_model`` takes from a checkpoint and ``--model`` to an eval-mode module."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter
from support.engine_models import small_convnet

from conversions.engine.config import ExportConfig, ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.loading import load_model
from conversions.engine.pipeline import run_export
from conversions.management.cli_terms import cli_message
from conversions.management.commands.export_models import parse_model_kwargs
from engine.conftest import MODELS_FILE, SMALL_SHAPE, assert_flags_exist

USER_PACKAGE = "qw_user_arch"
USER_MODULE_SOURCE = textwrap.dedent(
    """
    import torch.nn as nn


    class TinyNet(nn.Module):
        def __init__(self, num_classes=4):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))


    def build(num_classes=4):
        return TinyNet(num_classes)
    """
)


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``qw_user_arch.nets`` importable from a folder on sys.path, as a user's own package would be."""
    root = tmp_path / "site"
    (root / USER_PACKAGE).mkdir(parents=True)
    (root / USER_PACKAGE / "__init__.py").write_text("")
    (root / USER_PACKAGE / "nets.py").write_text(USER_MODULE_SOURCE)
    monkeypatch.syspath_prepend(str(root))
    import qw_user_arch.nets as nets

    yield nets
    for name in [m for m in sys.modules if m == USER_PACKAGE or m.startswith(USER_PACKAGE + ".")]:
        del sys.modules[name]


def _reference_net(seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return small_convnet().eval()


def _assert_same_outputs(a: torch.nn.Module, b: torch.nn.Module, shape: tuple[int, ...] = SMALL_SHAPE) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_state_dict_with_file_path_factory(tmp_path: Path) -> None:
    net = _reference_net()
    ckpt = tmp_path / "net.pth"
    torch.save(net.state_dict(), ckpt)

    loaded = load_model(ModelSpec(checkpoint=str(ckpt), model=f"{MODELS_FILE}:small_convnet", input_shape=SMALL_SHAPE,
                                  trust_checkpoint=True))

    assert loaded.route == "state_dict"
    assert not loaded.module.training
    _assert_same_outputs(loaded.module, net)


def test_state_dict_with_package_module_factory(tmp_path: Path, user_package) -> None:
    net = user_package.build().eval()
    ckpt = tmp_path / "tiny.pth"
    torch.save(net.state_dict(), ckpt)

    loaded = load_model(ModelSpec(checkpoint=str(ckpt), model="qw_user_arch.nets:build", input_shape=SMALL_SHAPE,
                                  trust_checkpoint=True))

    assert loaded.route == "state_dict"
    assert type(loaded.module).__name__ == "TinyNet"
    _assert_same_outputs(loaded.module, net)


def test_model_kwargs_reach_the_factory(tmp_path: Path, user_package) -> None:
    kwargs = parse_model_kwargs(["num_classes=7"])
    assert kwargs == {"num_classes": 7}
    ckpt = tmp_path / "tiny7.pth"
    torch.save(user_package.build(num_classes=7).state_dict(), ckpt)

    loaded = load_model(
        ModelSpec(checkpoint=str(ckpt), model="qw_user_arch.nets:build", model_kwargs=kwargs, input_shape=SMALL_SHAPE,
                  trust_checkpoint=True)
    )

    with torch.no_grad():
        assert loaded.module(torch.zeros(SMALL_SHAPE)).shape == (1, 7)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: {"state_dict": sd, "epoch": 3, "optimizer": {"lr": 0.1}}, id="state_dict-key"),
        pytest.param(lambda sd: {"model": sd}, id="model-key"),
        pytest.param(lambda sd: {f"module.{k}": v for k, v in sd.items()}, id="module-prefix"),
        pytest.param(lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}}, id="wrapped-and-prefixed"),
    ],
)
def test_wrapped_checkpoints_load(tmp_path: Path, wrap) -> None:
    net = _reference_net()
    ckpt = tmp_path / "wrapped.pth"
    torch.save(wrap(net.state_dict()), ckpt)

    loaded = load_model(ModelSpec(checkpoint=str(ckpt), model=f"{MODELS_FILE}:small_convnet", input_shape=SMALL_SHAPE,
                                  trust_checkpoint=True))

    _assert_same_outputs(loaded.module, net)


def test_torch_export_program_needs_no_model_and_brings_its_input_shape(tmp_path: Path) -> None:
    net = _reference_net()
    program = torch.export.export(net, (torch.zeros(SMALL_SHAPE),))
    ckpt = tmp_path / "net.pt2"
    torch.export.save(program, str(ckpt))

    loaded = load_model(ModelSpec(checkpoint=str(ckpt)))  # default input shape is 1,3,224,224

    assert loaded.route == "exported_program"
    assert loaded.input_shape == SMALL_SHAPE
    _assert_same_outputs(loaded.module, net)


def test_pickled_module_is_refused_without_trust(tmp_path: Path, user_package) -> None:
    ckpt = tmp_path / "whole.pth"
    torch.save(user_package.build(), ckpt)

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), input_shape=SMALL_SHAPE))

    message = cli_message(err.value)
    assert_flags_exist(message)
    assert str(ckpt) in message
    assert "--trust-checkpoint" in message
    assert "qw_user_arch.nets.TinyNet" in message
    assert "state_dict()" in message


def test_pickled_module_loads_with_trust(tmp_path: Path, user_package) -> None:
    net = user_package.build().eval()
    ckpt = tmp_path / "whole.pth"
    torch.save(net, ckpt)

    loaded = load_model(ModelSpec(checkpoint=str(ckpt), input_shape=SMALL_SHAPE, trust_checkpoint=True))

    assert loaded.route == "pickled_module"
    _assert_same_outputs(loaded.module, net)


def _checkpoint_for_route(route: str, net: torch.nn.Module, folder: Path) -> ModelSpec:
    if route == "state_dict":
        torch.save(net.state_dict(), folder / "tiny.pth")
        return ModelSpec(str(folder / "tiny.pth"), "qw_user_arch.nets:build", input_shape=SMALL_SHAPE, trust_checkpoint=True)
    if route == "exported_program":
        torch.export.save(torch.export.export(net, (torch.zeros(SMALL_SHAPE),)), str(folder / "tiny.pt2"))
        return ModelSpec(str(folder / "tiny.pt2"))
    torch.save(net, folder / "tiny.pth")
    return ModelSpec(str(folder / "tiny.pth"), input_shape=SMALL_SHAPE, trust_checkpoint=True)


@pytest.mark.parametrize("route", ["state_dict", "exported_program", "pickled_module"])
def test_each_loading_route_converts_to_a_tflite_that_matches_pytorch(tmp_path: Path, user_package, route: str) -> None:
    net = user_package.build().eval()
    spec = _checkpoint_for_route(route, net, tmp_path)

    report = run_export(ExportConfig(model=spec, variants=("none",), output_dir=str(tmp_path / "out")))

    assert report.model["load_route"] == route
    assert report.variant("float32").fidelity.sqnr_db >= 40
    x = np.random.default_rng(0).standard_normal(SMALL_SHAPE).astype(np.float32)
    interpreter = Interpreter(model_path=report.variant("float32").output)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1))  # NHWC
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    with torch.no_grad():
        np.testing.assert_allclose(got, net(torch.from_numpy(x)).numpy(), atol=1e-4)


@pytest.mark.slow
def test_builtin_efficientnet_lite0_loads_packaged_weights() -> None:
    loaded = load_model(ModelSpec(model="efficientnet-lite0"))

    assert loaded.route == "builtin"
    assert loaded.preprocess_hint == "imagenet"
    with torch.no_grad():
        assert loaded.module(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
