"""Representative data: YOLO trees, data.yaml, image lists, --dataset-type forcing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.data_fixtures import build_imagefolder, build_yolo, write_image

from conversions.engine.data.generator import RepresentativeDataGenerator
from conversions.engine.data.layouts import detect_dataset
from conversions.engine.errors import DatasetError


def test_yolo_images_split_tree_is_detected_with_labels(tmp_path: Path) -> None:
    root = build_yolo(tmp_path / "y", {"train": 6, "val": 4})
    s = detect_dataset(root)
    assert (s.layout, s.split, s.splits, s.labelled) == ("yolo", "val", {"train": 6, "val": 4}, 10)
    assert "labels for 10 of 10" in s.reason


def test_yolo_split_images_tree_is_detected(tmp_path: Path) -> None:
    root = build_yolo(tmp_path / "y", {"train": 3, "test": 2}, style="split_first")
    s = detect_dataset(root)
    assert (s.layout, s.split, s.splits) == ("yolo", "test", {"train": 3, "test": 2})


def test_yolo_defaults_to_letterbox_and_uniform_sampling(tmp_path: Path) -> None:
    root = build_yolo(tmp_path / "y", {"val": 5})
    gen = RepresentativeDataGenerator(root, num_samples=3, input_size=64, num_workers=0)
    assert gen.preprocess_spec.preset == "yolo" and gen.preprocess_spec.letterbox
    assert len(gen.calibration_items) == 3 and all(it.label is None for it in gen.calibration_items)


def test_data_yaml_with_folders_list_files_and_path(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    for i in range(4):
        write_image(root / "imgs" / "a" / f"{i}.jpg")
        write_image(root / "imgs" / "b" / f"{i}.png")
    (root / "val.txt").write_text("./imgs/b/0.png\nimgs/b/1.png\n# comment\n\n")
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "data.yaml").write_text(yaml.safe_dump(
        {"path": "../coco", "train": "imgs/a", "val": "val.txt", "test": "missing/", "names": {0: "person", 1: "car"}}))
    s = detect_dataset(cfg / "data.yaml")
    assert (s.layout, s.split, s.splits) == ("yolo", "val", {"train": 4, "val": 2})
    assert s.classes == ["person", "car"]
    assert "entries not found: test" in s.reason
    s2 = detect_dataset(cfg)  # a folder holding data.yaml works too
    assert s2.splits == s.splits


def test_roboflow_style_dotdot_paths_are_accepted(tmp_path: Path) -> None:
    root = build_yolo(tmp_path / "rf", {"train": 2, "valid": 3}, style="split_first")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['thing']\n")
    s = detect_dataset(root)
    assert (s.split, s.splits) == ("val", {"train": 2, "val": 3})


def test_data_yaml_pointing_nowhere_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("val: nowhere/images\n")
    with pytest.raises(DatasetError, match="lists no existing images"):
        detect_dataset(tmp_path)


def test_image_list_file(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / "pics" / f"{i}.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(f"pics/0.jpg\n{tmp_path / 'pics' / '2.jpg'}\n")
    s = detect_dataset(listing)
    assert (s.layout, s.num_images) == ("filelist", 2)
    gen = RepresentativeDataGenerator(listing, num_samples=5, input_size=8, num_workers=0)
    assert len(list(gen)) == 2


def test_split_folders_of_bare_images(tmp_path: Path) -> None:
    for split in ("train", "val"):
        for i in range(3):
            write_image(tmp_path / "d" / split / f"{i}.jpg")
    s = detect_dataset(tmp_path / "d")
    assert (s.layout, s.split, s.classes) == ("images", "val", [])


def test_dataset_type_images_takes_every_image_unlabelled(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "c", {"ant": 2, "bee": 3})
    s = detect_dataset(root, dataset_type="images")
    assert (s.layout, s.num_images, s.classes) == ("images", 5, [])


def test_dataset_type_detection_on_imagefolder_is_an_error(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "c", {"ant": 2, "bee": 3})
    with pytest.raises(DatasetError, match="not a YOLO dataset"):
        detect_dataset(root, dataset_type="detection")


def test_dataset_type_classification_on_flat_folder_is_an_error(rd_flat: Path) -> None:
    with pytest.raises(DatasetError, match="no class folders"):
        detect_dataset(rd_flat, dataset_type="classification")


def test_split_on_a_layout_without_splits_is_an_error(rd_flat: Path) -> None:
    with pytest.raises(DatasetError, match="no split folders"):
        detect_dataset(rd_flat, split="val")


def test_hidden_and_non_image_files_are_ignored(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "c", {"ant": 2, "bee": 2})
    (root / "ant" / "README.md").write_text("x")
    (root / "ant" / "._0.jpg").write_bytes(b"\0\0")
    s = detect_dataset(root)
    assert s.num_images == 4 and s.ignored_files == 1


def test_symlinked_class_folders_are_followed(tmp_path: Path) -> None:
    real = build_imagefolder(tmp_path / "real", {"ant": 2})
    root = build_imagefolder(tmp_path / "c", {"bee": 2})
    (root / "ant").symlink_to(real / "ant")
    assert detect_dataset(root).class_counts == {"ant": 2, "bee": 2}


def test_yolo_images_folder_without_labels_or_splits_is_not_taken_for_yolo(tmp_path: Path) -> None:
    for i in range(2):
        write_image(tmp_path / "d" / "images" / f"{i}.jpg")
    assert detect_dataset(tmp_path / "d").layout == "images"
    (tmp_path / "d" / "labels").mkdir()
    assert detect_dataset(tmp_path / "d").layout == "yolo"


def test_symlink_loops_do_not_hang_detection(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "c", {"ant": 2, "bee": 2})
    (root / "ant" / "loop").symlink_to(root)
    assert detect_dataset(root).class_counts == {"ant": 4, "bee": 2}  # ant/loop/bee/* counted once, under ant


def test_a_single_folder_of_images_beside_other_folders_is_taken_unlabelled(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / "d" / "photos" / f"{i}.jpg")
    (tmp_path / "d" / "docs").mkdir()
    (tmp_path / "d" / "docs" / "readme.txt").write_text("x")
    s = detect_dataset(tmp_path / "d")
    assert (s.layout, s.num_images, s.classes) == ("images", 3, [])
    assert "photos" in s.reason
