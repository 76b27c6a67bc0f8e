"""An untrusted state dict is parsed in a spawned, unprivileged child; its tensors come back, its failures worded."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
import torch

from conversions.engine.config import ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.builtin import get_builtin
from conversions.engine.model.loading import load_model, parse_untrusted
from conversions.engine.model.sandbox import (
    CPU_ENV,
    MEMORY_ENV,
    USER_ENV,
    load_state_isolated,
)

SHAPE = (1, 3, 96, 96)
AS_ROOT = os.name == "posix" and os.getuid() == 0


def _lite0_checkpoint(folder: Path) -> Path:
    torch.manual_seed(3)
    ckpt = folder / "lite0.pth"
    torch.save(
        {
            "state_dict": get_builtin("efficientnet-lite0")
            .build(pretrained=False)
            .state_dict()
        },
        ckpt,
    )
    ckpt.chmod(0o600)  # readable by the worker's user only, as an upload is
    return ckpt


def test_untrusted_state_dict_loads_through_the_child_as_in_process(
    tmp_path: Path,
) -> None:
    ckpt = _lite0_checkpoint(tmp_path)
    spec = dict(checkpoint=str(ckpt), model="efficientnet-lite0", input_shape=SHAPE)

    sandboxed = load_model(ModelSpec(**spec))
    in_process = load_model(ModelSpec(**spec, trust_checkpoint=True))

    assert "parsed in a separate process" in sandboxed.description
    assert "separate process" not in in_process.description
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(
            sandboxed.module(x), in_process.module(x), rtol=0, atol=0
        )
    assert list(os.listdir(tmp_path)) == [
        "lite0.pth"
    ]  # the child's copy is not left beside it


@pytest.mark.skipif(
    not AS_ROOT, reason="the privilege drop happens only when the worker runs as root"
)
def test_as_root_the_child_parses_as_another_uid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "w.pth"
    weights = torch.nn.Linear(4, 2).state_dict()
    torch.save(weights, ckpt)
    ckpt.chmod(0o600)

    dropped = load_state_isolated(
        ckpt, parse_untrusted
    )  # the uid is the child's own os.getuid() after the drop
    nobody = pwd.getpwnam("nobody").pw_uid
    assert (dropped.uid, dropped.warning) == (nobody, None)
    assert dropped.describe() == f"parsed in a separate process as uid {nobody}"
    torch.testing.assert_close(dropped.state, dict(weights), rtol=0, atol=0)

    monkeypatch.setenv(USER_ENV, "quantweb-no-such-user")
    kept_root = load_state_isolated(ckpt, parse_untrusted)
    assert kept_root.uid == 0
    assert (
        "still as root: dropping to 'quantweb-no-such-user' failed"
        in kept_root.describe()
    )
    assert f"set {USER_ENV} to an existing unprivileged user" in kept_root.describe()


def test_a_child_over_its_memory_limit_gives_the_worded_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "big.pth"
    torch.save(
        {"w": torch.zeros(32, 1024, 1024)}, ckpt
    )  # 128 MB of tensor, over a 64 MB address-space cap
    monkeypatch.setenv(MEMORY_ENV, "64")

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0"))

    assert "ran out of memory under its limit of 64 MB" in str(err.value)
    assert f"raise {MEMORY_ENV}" in str(err.value)
    assert err.value.field == "checkpoint"


def test_a_child_killed_by_its_cpu_limit_gives_the_worded_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "many.pth"
    torch.save(
        {f"t{i}": torch.zeros(1) for i in range(12000)}, ckpt
    )  # ~2 CPU s to unpickle, over a 0 s budget
    monkeypatch.setenv(CPU_ENV, "0")

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0"))

    message = str(err.value)
    assert (
        f"the sandboxed process reading {ckpt} went over its CPU-time limit (SIGXCPU)"
        in message
    )
    assert f"{CPU_ENV}=0 CPU seconds: raise them" in message
    assert err.value.field == "checkpoint"


def test_a_pickled_module_is_refused_in_the_child_with_the_original_path(
    tmp_path: Path,
) -> None:
    ckpt = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(4, 2), ckpt)

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model="efficientnet-lite0"))

    assert str(err.value).startswith(f"{ckpt} contains pickled Python objects")
    assert err.value.field == "trust_checkpoint"
