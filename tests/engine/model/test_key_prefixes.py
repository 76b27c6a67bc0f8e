"""State-dict key prefixes are stripped only when that makes the keys fit, and the load says which."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from support.engine_models import small_convnet

from conversions.engine.config import ModelSpec
from conversions.engine.model.loading import load_model
from engine.conftest import SMALL_SHAPE

HERE = Path(__file__).resolve()


class Wrapper(nn.Module):
    """A module whose own keys start with ``model.`` (as Ultralytics' DetectionModel and many wrappers do)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = small_convnet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def wrapper() -> Wrapper:
    return Wrapper()


def _save(tmp_path: Path, state: dict) -> str:
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    return str(path)


def test_a_module_whose_own_keys_start_with_model_keeps_them(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = Wrapper()
    loaded = load_model(
        ModelSpec(
            _save(tmp_path, net.state_dict()),
            f"{HERE}:wrapper",
            input_shape=SMALL_SHAPE,
            trust_checkpoint=True,  # a factory from a file runs code: it needs trust
        )
    )
    assert loaded.prefixes_stripped == ()
    x = torch.rand(SMALL_SHAPE)
    torch.testing.assert_close(loaded.module(x), net.eval()(x))


def test_module_and_compile_prefixes_are_stripped_when_that_fits_and_the_load_says_which(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    net = small_convnet()
    state = {f"module._orig_mod.{k}": v for k, v in net.state_dict().items()}
    loaded = load_model(
        ModelSpec(
            _save(tmp_path, state),
            f"{HERE.parents[2] / 'support' / 'engine_models.py'}:small_convnet",
            input_shape=SMALL_SHAPE,
            trust_checkpoint=True,  # a factory from a file runs code: it needs trust
        )
    )
    assert loaded.prefixes_stripped == ("module.", "_orig_mod.")
    assert "key prefix 'module.' + '_orig_mod.' stripped to fit" in loaded.description


def test_a_data_parallel_wrapper_of_a_model_wrapper_loses_only_module(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    net = Wrapper()
    state = {
        f"module.{k}": v for k, v in net.state_dict().items()
    }  # module.model.features...
    loaded = load_model(
        ModelSpec(_save(tmp_path, state), f"{HERE}:wrapper", input_shape=SMALL_SHAPE, trust_checkpoint=True)
    )
    assert loaded.prefixes_stripped == ("module.",)
