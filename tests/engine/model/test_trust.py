"""Nothing that runs code from outside quantweb loads without trust: the rule the CLI and the worker share."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.hostile import marker_source, write_pickling_pt2, write_plain_pt2

from conversions.engine.config import ModelSpec
from conversions.engine.errors import CheckpointError
from conversions.engine.model.loading import code_to_trust, load_model
from conversions.management.cli_terms import cli_message


def _refusal(spec: ModelSpec) -> str:
    with pytest.raises(CheckpointError) as err:
        load_model(spec)
    assert err.value.field == "trust_checkpoint"
    return cli_message(err.value)


def test_an_architecture_file_is_not_imported_without_trust(tmp_path: Path) -> None:
    marker, source = tmp_path / "ran", tmp_path / "evil.py"
    source.write_text(marker_source(marker))
    spec = ModelSpec(model=f"{source}:build", input_shape=(1, 3, 16, 16))

    message = _refusal(
        ModelSpec(checkpoint=None, model=spec.model, input_shape=spec.input_shape)
    )

    assert not marker.exists()
    assert "--trust-checkpoint" in message and str(source) in message


def test_a_module_function_is_not_called_without_trust(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    spec = ModelSpec(
        model="subprocess:getoutput",
        model_kwargs={"cmd": f"touch {marker}"},
        input_shape=(1, 3, 8, 8),
    )

    message = _refusal(spec)

    assert not marker.exists()
    assert "'subprocess:getoutput' is imported" in message


def test_a_pt2_with_a_pickled_payload_is_refused_before_loading(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = write_pickling_pt2(tmp_path / "evil.pt2", marker)

    message = _refusal(ModelSpec(checkpoint=str(evil), input_shape=(1, 3, 16, 16)))

    assert not marker.exists()
    assert (
        "carries payloads that loading unpickles" in message
        and "pickled payload" in message
    )


def test_the_pickled_pt2_really_runs_code_when_trusted(tmp_path: Path) -> None:
    """The hostile archive is real: with trust, torch.export.load unpickles its payload and the code runs."""
    marker = tmp_path / "ran"
    evil = write_pickling_pt2(tmp_path / "evil.pt2", marker)
    try:
        load_model(
            ModelSpec(
                checkpoint=str(evil), input_shape=(1, 3, 16, 16), trust_checkpoint=True
            )
        )
    except CheckpointError:
        pass  # the payload is not a tensor, so loading fails after the code ran
    assert marker.exists()


def test_a_plain_pt2_and_a_built_in_architecture_need_no_trust(tmp_path: Path) -> None:
    plain = write_plain_pt2(tmp_path / "plain.pt2")
    assert code_to_trust(ModelSpec(checkpoint=str(plain))) == []
    assert (
        code_to_trust(
            ModelSpec(checkpoint=str(tmp_path / "w.pth"), model="efficientnet-lite0")
        )
        == []
    )
    assert load_model(ModelSpec(checkpoint=str(plain))).route == "exported_program"
