"""Bad input fails early with one message that names the file, key or module and says what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from support.engine_models import linear_only, small_convnet

from conversions.engine.config import ModelSpec, parse_input_shape, parse_variants
from conversions.engine.errors import CheckpointError, OutputExistsError, QuantwebError
from conversions.engine.model.loading import load_model
from conversions.engine.pipeline import run_export
from conversions.management.cli_terms import cli_message
from engine.conftest import MODELS_FILE, SMALL_MODEL, SMALL_SHAPE, assert_flags_exist


@pytest.fixture
def state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return small_convnet().state_dict()


def _load_error(tmp_path: Path, content, model: str | None = SMALL_MODEL) -> str:
    """Saves ``content`` as ``weights.pth`` and returns the message ``load_model`` refuses it with."""
    torch.save(content, tmp_path / "weights.pth")
    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(tmp_path / "weights.pth"), model=model, input_shape=SMALL_SHAPE,
                             trust_checkpoint=True))
    assert_flags_exist(cli_message(err.value))
    return cli_message(err.value)


def test_missing_keys_are_named(tmp_path: Path, state_dict) -> None:
    del state_dict["classifier.bias"]
    message = _load_error(tmp_path, state_dict)
    assert f"{tmp_path / 'weights.pth'} does not fit the architecture SmallConvNet" in message
    assert "missing keys classifier.bias" in message
    assert "--model builds the same network" in message


def test_unexpected_keys_are_named(tmp_path: Path, state_dict) -> None:
    state_dict["head.extra.weight"] = torch.zeros(3)
    message = _load_error(tmp_path, state_dict)
    assert "unexpected keys head.extra.weight" in message


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    message = _load_error(tmp_path, small_convnet(num_classes=7).state_dict())
    assert "classifier.weight (checkpoint (7, 64) vs model (4, 64))" in message
    assert "--model-kwargs, e.g. num_classes" in message


def test_factory_module_that_cannot_be_imported_is_named(tmp_path: Path, state_dict) -> None:
    message = _load_error(tmp_path, state_dict, model="qw_no_such_package.nets:build")
    assert "cannot import module 'qw_no_such_package.nets'" in message
    assert "PYTHONPATH" in message


def test_missing_factory_attribute_lists_what_is_there(tmp_path: Path, state_dict) -> None:
    message = _load_error(tmp_path, state_dict, model=f"{MODELS_FILE}:no_such_factory")
    assert "has no callable 'no_such_factory'" in message
    assert "small_convnet" in message


def test_missing_factory_file_is_named(tmp_path: Path, state_dict) -> None:
    message = _load_error(tmp_path, state_dict, model=f"{tmp_path}/nowhere.py:build")
    assert f"the file {tmp_path}/nowhere.py does not exist" in message


def test_wrong_input_shape_suggests_input_shape(tmp_path: Path) -> None:
    ckpt = tmp_path / "linear.pth"
    torch.save(linear_only().state_dict(), ckpt)
    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model=f"{MODELS_FILE}:linear_only", input_shape=(1, 3, 224, 224),
                             trust_checkpoint=True))
    message = cli_message(err.value)
    assert_flags_exist(message)
    assert str(ckpt) in message
    assert "(1, 3, 224, 224)" in message
    assert "--input-shape" in message


def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(tmp_path / "nope.pth"), model=SMALL_MODEL, trust_checkpoint=True))
    assert f"checkpoint {tmp_path / 'nope.pth'} does not exist" in cli_message(err.value)
    assert "--checkpoint" in cli_message(err.value)
    assert_flags_exist(cli_message(err.value))


@pytest.mark.parametrize("damage", ["truncated", "random-bytes", "text", "empty"])
@pytest.mark.parametrize("trust", [False, True])
def test_corrupt_checkpoint_is_reported_as_unreadable(tmp_path: Path, state_dict, damage: str, trust: bool) -> None:
    ckpt = tmp_path / "broken.pth"
    torch.save(state_dict, ckpt)
    content = {
        "truncated": ckpt.read_bytes()[:2000],
        "random-bytes": os.urandom(4096),
        "text": b"this is not a checkpoint\n",
        "empty": b"",
    }[damage]
    ckpt.write_bytes(content)

    # Untrusted, only a built-in architecture may be named (a factory would be refused before the file is read).
    model = SMALL_MODEL if trust else "efficientnet-lite0"
    with pytest.raises(CheckpointError) as err:
        load_model(ModelSpec(checkpoint=str(ckpt), model=model, trust_checkpoint=trust))

    message = cli_message(err.value)
    assert_flags_exist(message)
    assert f"{ckpt} is not a readable PyTorch checkpoint" in message
    assert "written by torch.save" in message
    assert "--trust-checkpoint" not in message


def test_state_dict_without_model_asks_for_model(tmp_path: Path, state_dict) -> None:
    message = _load_error(tmp_path, state_dict, model=None)
    assert f"{tmp_path / 'weights.pth'} holds a state dict" in message
    assert "--model package.module:factory" in message
    assert "efficientnet-lite0" in message


def test_int8_without_dataset_dir_asks_for_one(tmp_path: Path, trained_model) -> None:
    config = trained_model.config(dataset=False, variants=("int8",), output_dir=str(tmp_path))
    with pytest.raises(QuantwebError) as err:
        run_export(config)
    assert "--dataset-dir" in cli_message(err.value)
    assert "--quantize dynamic" in cli_message(err.value)
    assert_flags_exist(cli_message(err.value))
    assert list(tmp_path.iterdir()) == []


def test_an_error_names_its_input_as_a_field_and_each_front_end_words_it(tmp_path: Path, trained_model) -> None:
    from conversions.wording import PORTAL_FIELD_NAMES

    config = trained_model.config(dataset=False, variants=("int8",), output_dir=str(tmp_path))
    with pytest.raises(QuantwebError) as err:
        run_export(config)
    assert err.value.field == "dataset_dir"
    assert "--" not in str(err.value) and "pass the dataset with images" in str(err.value)
    assert "pass the Dataset with images" in err.value.render(PORTAL_FIELD_NAMES)


def test_existing_output_without_force_is_refused_and_untouched(tmp_path: Path, trained_model) -> None:
    existing = tmp_path / "mine.tflite"
    existing.write_bytes(b"keep me")
    config = trained_model.config(variants=("dynamic",), output=str(existing))
    with pytest.raises(OutputExistsError) as err:
        run_export(config)
    assert str(existing) in cli_message(err.value)
    assert "--force" in cli_message(err.value)
    assert_flags_exist(cli_message(err.value))
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.tflite"]


def test_unknown_variant_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        parse_variants("int8,int9")
    assert cli_message(err.value) == "--quantize 'int9' is not a quantization; choose from float32 (or none), float16, dynamic, int8, int16x8"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,3,224", "must be four positive integers N,C,H,W, e.g. 1,3,224,224"),
        ("1,3,0,224", "must be four positive integers"),
        ("1,3,a,224", "is not a comma-separated list of integers, e.g. 1,3,224,224"),
    ],
)
def test_bad_input_shape_says_what_is_expected(text: str, expected: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_input_shape(text)
    assert f"--input-shape {text!r}" in cli_message(err.value)
    assert expected in cli_message(err.value)
    assert_flags_exist(cli_message(err.value))
