"""An untrusted torch.export program runs only ops a vision model computes; its sample inputs are never unpickled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from support.hostile import write_file_reading_pt2, write_pt2_with_pickling_sample_inputs

from conversions.engine.config import ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.builtin import get_builtin
from conversions.engine.model.loading import code_to_trust, load_model
from conversions.engine.model.pt2_ops import unlisted_ops
from conversions.management.cli_terms import cli_message

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="the sandbox needs a worker that can drop to another user")


def test_a_program_that_reads_a_file_is_refused_naming_the_op_and_runs_only_when_trusted(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"ABCD")
    program = write_file_reading_pt2(tmp_path / "reads.pt2", secret)

    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(program)))
    trusted = load_model(ModelSpec(checkpoint=str(program), trust_checkpoint=True))

    message = cli_message(err.value)
    assert message.startswith(f"refused to run the torch.export program {program}: its graph calls aten::from_file, ")
    assert "--trust-checkpoint" in message
    assert err.value.field == "trust_checkpoint"
    with torch.no_grad():  # trusted, it really reads the file: 65 + 66 + 67 + 68 added to every element
        assert trusted.module(torch.zeros(1, 3, 4, 4)).unique().tolist() == [266.0]


class _TinyAttention(nn.Module):
    """A small ViT-like block: patchify, LayerNorm, attention, GELU MLP, mean-pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.norm = nn.LayerNorm(16)
        self.qkv = nn.Linear(16, 48)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.norm(tokens)).reshape(1, -1, 3, 2, 8).permute(2, 0, 3, 1, 4).unbind(0)
        tokens = tokens + F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, -1, 16)
        tokens = tokens + self.mlp(self.norm(tokens))
        return self.head(tokens.mean(dim=1)).softmax(-1)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "tiny-attention"])
def test_the_allowlist_passes_vision_models(name: str) -> None:
    net = _TinyAttention() if name == "tiny-attention" else get_builtin(name).build(pretrained=False)
    size = 32 if name == "tiny-attention" else 224

    program = torch.export.export(net.eval(), (torch.zeros(1, 3, size, size),))

    assert unlisted_ops(program) == []


def test_an_untrusted_programs_sample_inputs_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    program = write_pt2_with_pickling_sample_inputs(tmp_path / "samples.pt2", marker)

    reasons = code_to_trust(ModelSpec(checkpoint=str(program)))  # what the portal asks at upload
    untrusted = load_model(ModelSpec(checkpoint=str(program)))
    assert (reasons, marker.exists()) == ([], False)
    assert "its ops checked against the allowlist, parsed in a separate process" in untrusted.description

    with pytest.raises(CheckpointError, match="expected tuple or dict, got int"):  # after the payload's code ran
        load_model(ModelSpec(checkpoint=str(program), trust_checkpoint=True))
    assert marker.exists()  # the payload is real: a trusted load unpickles it and its code runs


def test_the_upload_check_of_a_pt2_reads_it_without_torch(tmp_path: Path) -> None:
    """What the web process runs at upload (``code_to_trust`` -> ``pickled_payloads``) cannot unpickle with
    torch: it works in an interpreter where torch cannot be imported at all."""
    program = write_pt2_with_pickling_sample_inputs(tmp_path / "samples.pt2", tmp_path / "ran")
    script = (
        "import sys; sys.modules['torch'] = None; sys.path[:0] = sys.argv[2:]\n"
        "from pathlib import Path\n"
        "from conversions.engine.model.pt2_archive import pickled_payloads\n"
        "print(pickled_payloads(Path(sys.argv[1])))\n"
    )

    out = subprocess.run([sys.executable, "-c", script, str(program), *sys.path], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip

    assert out == "[]\n"
    assert not (tmp_path / "ran").exists()
