"""Representative data: layout detection, split choice, seeded stratified sampling, bad files, NCHW/NHWC."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from support.data_fixtures import build_imagefolder, write_image, write_noise

from conversions.engine.data.generator import RepresentativeDataGenerator
from conversions.engine.data.layouts import detect_dataset
from conversions.engine.errors import DatasetError


def test_imagefolder_with_splits_is_detected_and_prefers_val(rd_imagefolder: Path) -> None:
    s = detect_dataset(rd_imagefolder)
    assert s.layout == "imagefolder"
    assert s.split == "val"
    assert s.classes == ["cat", "dog", "fox"]
    assert s.splits == {"test": 12, "train": 21, "val": 32}
    assert s.class_counts == {"cat": 36, "dog": 20, "fox": 9}
    assert "val" in s.reason and "ImageFolder" in s.describe()
    json.dumps(s.to_dict())


def test_split_preference_falls_back_to_test_then_train(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "a", {"train": {"x": 2, "y": 2}, "test": {"x": 2, "y": 2}})
    assert detect_dataset(root).split == "test"
    root = build_imagefolder(tmp_path / "b", {"train": {"x": 2, "y": 2}})
    assert detect_dataset(root).split == "train"


def test_validation_alias_counts_as_val(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "a", {"train": {"x": 2, "y": 2}, "validation": {"x": 1, "y": 1}})
    assert detect_dataset(root).split == "validation"


def test_split_flag_overrides_preference(rd_imagefolder: Path) -> None:
    gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=5, split="train", num_workers=0)
    assert gen.structure.split == "train"
    assert {it.split for it in gen.calibration_items} == {"train"}


def test_unknown_split_is_an_error_naming_the_splits(rd_imagefolder: Path) -> None:
    with pytest.raises(DatasetError, match="'val'"):
        detect_dataset(rd_imagefolder, split="holdout")


def test_bare_imagefolder_is_detected(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "bare", {"ant": 3, "bee": 5})
    s = detect_dataset(root)
    assert (s.layout, s.split, s.classes) == ("imagefolder", None, ["ant", "bee"])
    assert s.num_images == 8


def test_flat_folder_is_detected(rd_flat: Path) -> None:
    s = detect_dataset(rd_flat)
    assert (s.layout, s.num_images, s.classes, s.split) == ("images", 10, [], None)
    assert "flat" in s.reason


def test_empty_tree_is_an_error_that_shows_the_tree_and_layouts(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError) as err:
        detect_dataset(tmp_path / "empty")
    text = str(err.value)
    assert "no images found" in text and "notes.txt" in text and "sub/" in text and "accepted layouts" in text


def test_ambiguous_tree_is_an_error(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "mixed", {"ant": 2, "bee": 2})
    write_image(root / "loose.jpg")
    with pytest.raises(DatasetError, match="ambiguous"):
        detect_dataset(root)


def test_missing_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        detect_dataset(tmp_path / "nope")


def test_imagefolder_sampling_is_stratified(tmp_path: Path) -> None:
    root = build_imagefolder(tmp_path / "s", {"val": {"a": 60, "b": 30, "c": 9, "d": 1}}, ext=".png")
    gen = RepresentativeDataGenerator(root, num_samples=20, num_workers=0)
    counts = Counter(gen.structure.classes[it.label] for it in gen.calibration_items)
    assert counts == {"a": 12, "b": 6, "c": 1, "d": 1}  # proportional, every class present
    assert gen.report()["calibration"]["class_counts"] == {"a": 12, "b": 6, "c": 1, "d": 1}


def test_sampling_is_deterministic_for_a_seed_and_differs_across_seeds(rd_imagefolder: Path) -> None:
    def files(seed: int) -> list[str]:
        return [it.path for it in RepresentativeDataGenerator(rd_imagefolder, num_samples=10, seed=seed, num_workers=0).calibration_items]

    assert files(1) == files(1)
    assert files(1) != files(2)


def test_calibration_does_not_change_when_evaluation_is_requested(rd_imagefolder: Path) -> None:
    a = RepresentativeDataGenerator(rd_imagefolder, num_samples=8, num_workers=0)
    b = RepresentativeDataGenerator(rd_imagefolder, num_samples=8, num_eval_samples=10, num_workers=0)
    assert a.calibration_items == b.calibration_items


def test_evaluation_items_are_disjoint_from_calibration(rd_imagefolder: Path) -> None:
    gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=20, num_eval_samples=20, num_workers=0)
    cal = {it.path for it in gen.calibration_items}
    ev = {it.path for it in gen.evaluation_items}
    assert len(cal) == 20 and len(ev) == 20 and not cal & ev
    report = gen.report()
    assert report["calibration"]["from_split"] == {"val": 20}
    assert report["evaluation"]["from_split"] == {"val": 12, "test": 8}  # val runs out, then test
    assert report["evaluation"]["disjoint_from_calibration"] is True
    assert not any("fewer images" in note for note in gen.notes)


def test_scarce_images_are_split_with_evaluation_getting_a_share(rd_flat: Path) -> None:
    gen = RepresentativeDataGenerator(rd_flat, num_samples=100, num_eval_samples=100, num_workers=0)
    assert (len(gen.calibration_items), len(gen.evaluation_items)) == (7, 3)
    assert any("fewer images than requested" in n for n in gen.notes)


def test_fewer_images_than_requested_uses_all_with_a_note(rd_flat: Path) -> None:
    gen = RepresentativeDataGenerator(rd_flat, num_samples=50, num_workers=0)
    assert len(gen.calibration_items) == 10
    assert "fewer images than requested: using all 10" in gen.notes


def test_imagenet_preset_pixel_value_nchw_and_nhwc(rd_flat: Path) -> None:
    root = rd_flat.parent / "one"
    write_image(root / "a.png", size=(300, 200), color=(128, 64, 32))
    nchw = next(iter(RepresentativeDataGenerator(root, num_samples=1, num_workers=0)))
    nhwc = next(iter(RepresentativeDataGenerator(root, num_samples=1, num_workers=0, layout="NHWC")))
    expected = (np.array([128, 64, 32]) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert nchw.shape == (3, 224, 224) and nchw.dtype == np.float32
    assert nhwc.shape == (224, 224, 3)
    np.testing.assert_allclose(nchw[:, 100, 100], expected, rtol=1e-5)
    np.testing.assert_array_equal(nchw.transpose(1, 2, 0), nhwc)


def test_tflite_batches_have_a_batch_dim_and_restart(rd_flat: Path) -> None:
    gen = RepresentativeDataGenerator(rd_flat, num_samples=3, layout="NHWC", input_size=32, num_workers=0)
    first = [b[0] for b in gen.generate_tflite_batches()]
    second = [b[0] for b in gen.generate_tflite_batches()]
    assert len(first) == 3 and first[0].shape == (1, 32, 32, 3) and first[0].dtype == np.float32
    np.testing.assert_array_equal(np.stack(first), np.stack(second))


def test_broken_files_are_found_by_their_header_listed_by_name_and_never_sampled(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    for i in range(4):
        write_image(root / f"good{i}.jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("<html>not an image</html>")
    good = write_noise(tmp_path / "noise.jpg", (64, 64), seed=1).read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) * 3 // 4])
    (root / "dangling.jpg").symlink_to(root / "gone.jpg")
    gen = RepresentativeDataGenerator(root, num_samples=8, num_workers=0, input_size=16)
    samples = list(gen)
    reasons = {Path(b["path"]).name: b["reason"] for b in gen.structure.broken_files}
    assert reasons == {
        "empty.jpg": "empty file (0 bytes)",
        "text.png": "not an image (starts with '<html>no')",
        "truncated.jpg": "truncated JPEG (no end-of-image marker)",
        "dangling.jpg": "broken symlink (target missing)",
    }
    assert gen.structure.num_images == 4 and gen.structure.header_checked == 8
    assert len(samples) == 4 and gen.skipped == []  # none of them was drawn, so none had to be replaced
    note = next(n for n in gen.notes if "failed the header check" in n)
    assert "empty.jpg: empty file (0 bytes)" in note and "truncated.jpg: truncated JPEG" in note
    assert gen.report()["structure"]["broken_files"] == gen.structure.broken_files


def test_a_sampled_file_that_passes_the_header_but_fails_to_decode_is_named_in_the_notes(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    for i in range(3):
        write_image(root / f"good{i}.jpg")
    # A JPEG header and end marker around garbage: the header check passes, decoding fails.
    (root / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9")
    gen = RepresentativeDataGenerator(root, num_samples=4, num_workers=0, input_size=16)
    samples = list(gen)
    assert len(samples) == 3
    assert [Path(s["path"]).name for s in gen.skipped] == ["garbage.jpg"]
    assert gen.report()["skipped"] == gen.skipped
    assert any("sampled files skipped as unusable (garbage.jpg: " in n for n in gen.notes)


def test_nothing_usable_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "allbad"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"")
    (root / "b.jpg").write_text("nope")
    with pytest.raises(DatasetError, match=r"failed the header check \(a.jpg: empty file \(0 bytes\); b.jpg: not an image"):
        RepresentativeDataGenerator(root, num_samples=2, num_workers=0)


def test_samples_are_identical_across_worker_counts(rd_imagefolder: Path) -> None:
    def samples(workers: int) -> np.ndarray:
        gen = RepresentativeDataGenerator(rd_imagefolder, num_samples=15, input_size=48, num_workers=workers)
        return np.stack(list(gen))

    in_process = samples(0)
    assert in_process.shape == (15, 3, 48, 48)
    np.testing.assert_array_equal(in_process, samples(1))
    np.testing.assert_array_equal(in_process, samples(2))


def test_sample_is_the_same_in_another_process_with_another_hash_seed(rd_imagefolder: Path) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1])\n"
        "from conversions.engine.data.generator import RepresentativeDataGenerator as G\n"
        "g = G(sys.argv[2], num_samples=9, num_eval_samples=5, seed=7, num_workers=0)\n"
        "print(json.dumps([g.report()['calibration']['files'], g.report()['evaluation']['files']]))\n"
    )
    repo = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, repo, str(rd_imagefolder)], capture_output=True, text=True,
                         env=env, timeout=60)
    here = RepresentativeDataGenerator(rd_imagefolder, num_samples=9, num_eval_samples=5, seed=7, num_workers=0).report()
    assert json.loads(out.stdout) == [here["calibration"]["files"], here["evaluation"]["files"]], out.stderr
