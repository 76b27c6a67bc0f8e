"""A data.yaml ``path:`` is resolved as Ultralytics resolves it, falling back to the YAML's folder, and said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.data_fixtures import write_image
from support.detection_data import write_shapes_dataset

from conversions.engine.data.layouts import detect_dataset
from conversions.engine.errors import DatasetError


def _dataset(root: Path, count: int = 3) -> Path:
    for i in range(count):
        write_image(root / "images" / "val" / f"{i}.jpg")
    return root


def _yaml(folder: Path, path_value: str, splits: tuple[str, ...] = ("val",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "data.yaml"
    listed = "".join(f"{split}: images/{split}\n" for split in splits)
    target.write_text(f"path: {path_value}\n{listed}names: ['a']\n")
    return target


def test_path_is_resolved_against_the_working_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dataset(tmp_path / "work" / "coco8", 3)
    _dataset(
        tmp_path / "cfg" / "coco8", 5
    )  # the YAML's folder has one too: the working directory wins
    yaml_file = _yaml(tmp_path / "cfg", "coco8")
    monkeypatch.chdir(tmp_path / "work")
    s = detect_dataset(yaml_file)
    assert s.splits == {"val": 3}
    assert (
        f"path: coco8 resolved against the working directory ({tmp_path / 'work' / 'coco8'})"
        in s.reason
    )


def test_then_ultralytics_datasets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = tmp_path / "ds"
    _dataset(datasets / "coco8", 4)
    config = tmp_path / "ultra"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"datasets_dir": str(datasets)}))
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(config))
    monkeypatch.chdir(tmp_path)
    s = detect_dataset(_yaml(tmp_path / "cfg", "coco8"))
    assert s.splits == {"val": 4}
    assert "resolved against Ultralytics' datasets folder" in s.reason


def test_falls_back_to_the_yaml_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dataset(tmp_path / "cfg" / "mine", 2)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "no-settings"))
    monkeypatch.chdir(tmp_path)
    s = detect_dataset(_yaml(tmp_path / "cfg", "mine"))
    assert s.splits == {"val": 2}
    assert "resolved against the YAML's folder" in s.reason


def test_a_path_found_nowhere_names_every_place_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "no-settings"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError) as err:
        detect_dataset(_yaml(tmp_path / "cfg", "absent"))
    assert "lists no existing images" in str(err.value)
    assert (
        f"path: absent found in none of {tmp_path / 'absent'}, {tmp_path / 'no-settings'}"
        not in str(err.value)
    )
    assert f"path: absent found in none of {tmp_path / 'absent'}, " in str(err.value)
    assert str(tmp_path / "cfg" / "absent") in str(err.value)


def test_a_dataset_folder_whose_path_names_itself_is_read_from_the_yaml_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_shapes_dataset(tmp_path / "det_yolo", train=4, val=5, background=1)
    _yaml(root, "det_yolo", ("train", "val"))  # as Ultralytics writes it: path: names the folder itself
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "no-settings"))
    monkeypatch.chdir(tmp_path / "det_yolo")  # not its parent: ./det_yolo does not exist
    s = detect_dataset(root)
    assert s.layout == "yolo"
    assert s.splits == {"train": 4, "val": 6}
    assert f"used the YAML's own folder {root} instead, which holds the listed splits" in s.reason
    assert f"path: det_yolo found in none of {root / 'det_yolo'}" in s.reason


def test_a_path_found_nowhere_with_no_split_beside_the_yaml_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "det_yolo"
    root.mkdir()
    _yaml(root, "det_yolo", ("train", "val"))  # as Ultralytics writes it: path: names the folder itself
    write_image(tmp_path / "elsewhere" / "images" / "val" / "0.jpg")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "no-settings"))
    monkeypatch.chdir(root)
    with pytest.raises(DatasetError, match="lists no existing images"):
        detect_dataset(root)
