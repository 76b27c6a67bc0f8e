"""Representative data: each preset against hand-computed pixels, custom flags, image modes, EXIF, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.cli import raises_worded
from support.data_fixtures import write_image

from conversions.engine.data import preprocess as pp
from conversions.engine.data.generator import RepresentativeDataGenerator
from conversions.engine.data.options import preprocess_overrides_from_args
from conversions.engine.data.preprocess import build_spec

COLOR = (128, 64, 32)


def one_sample(root: Path, **kwargs) -> np.ndarray:
    kwargs.setdefault("num_workers", 0)
    return next(iter(RepresentativeDataGenerator(root, num_samples=1, **kwargs)))


@pytest.fixture
def solid(tmp_path: Path) -> Path:
    write_image(tmp_path / "solid" / "a.png", size=(64, 32), color=COLOR)
    return tmp_path / "solid"


def test_yolo_preset_letterboxes_with_114_padding(solid: Path) -> None:
    x = one_sample(solid, preprocess="yolo", input_size=64)
    assert x.shape == (3, 64, 64)
    np.testing.assert_allclose(x[:, 0, 0], [114 / 255] * 3, rtol=1e-6)  # top padding rows 0..15
    np.testing.assert_allclose(x[:, 15, 10], [114 / 255] * 3, rtol=1e-6)
    np.testing.assert_allclose(x[:, 16, 10], np.array(COLOR) / 255, rtol=1e-6)  # image rows 16..47
    np.testing.assert_allclose(x[:, 47, 63], np.array(COLOR) / 255, rtol=1e-6)
    np.testing.assert_allclose(x[:, 48, 0], [114 / 255] * 3, rtol=1e-6)


def test_inception_preset_scales_to_minus_one_one(solid: Path) -> None:
    x = one_sample(solid, preprocess="inception", input_size=16)
    np.testing.assert_allclose(x[:, 8, 8], (np.array(COLOR) / 255 - 0.5) / 0.5, atol=1e-6)


def test_raw_preset_is_uint8_pixels(solid: Path) -> None:
    x = one_sample(solid, preprocess="raw", input_size=16, layout="NHWC")
    assert x.dtype == np.uint8 and x.shape == (16, 16, 3)
    assert tuple(x[3, 3]) == COLOR


def test_custom_mean_std_scale_override_the_preset(solid: Path) -> None:
    overrides = preprocess_overrides_from_args(mean="100", std="2,4,8", scale="1")
    x = one_sample(solid, input_size=16, preprocess_overrides=overrides)
    np.testing.assert_allclose(x[:, 5, 5], [(128 - 100) / 2, (64 - 100) / 4, (32 - 100) / 8], rtol=1e-6)


def test_single_channel_model_gets_grayscale_samples(solid: Path) -> None:
    gen = RepresentativeDataGenerator(solid, num_samples=1, input_shape=(1, 1, 28, 28), num_workers=0)
    x = next(iter(gen))
    assert x.shape == (1, 28, 28)
    gray = 79  # Pillow's L = R*299/1000 + G*587/1000 + B*114/1000
    mean, std = sum(pp.IMAGENET_MEAN) / 3, sum(pp.IMAGENET_STD) / 3
    np.testing.assert_allclose(x[0, 14, 14], (gray / 255 - mean) / std, rtol=1e-5)
    assert "1 RGB converted to L" in gen.notes


def test_input_shape_wins_over_input_size_and_nhwc_shape_is_understood(solid: Path) -> None:
    assert one_sample(solid, input_size=100, input_shape="1,3,20,30").shape == (3, 20, 30)
    assert one_sample(solid, input_shape=(1, 20, 30, 3), layout="NHWC").shape == (20, 30, 3)


def test_imagenet_resize_and_crop_geometry() -> None:
    spec = build_spec("imagenet", 224)
    assert (spec.resize, spec.crop, spec.size, spec.interpolation) == (256, (224, 224), (224, 224), "bilinear")
    img = Image.fromarray(np.arange(300 * 400, dtype=np.uint32).reshape(300, 400).astype(np.uint8)).convert("RGB")
    assert pp.resize_and_crop(img, spec).size == (224, 224)
    assert build_spec("imagenet", 224, overrides={"crop": 0.5}).resize == 448


def test_overrides_parse_every_flag() -> None:
    got = preprocess_overrides_from_args(mean="0.5,0.4,0.3", std="0.2", scale="1/255", resize="320x240",
                                         crop="0.9", interpolation="BICUBIC")
    assert got == {"mean": (0.5, 0.4, 0.3), "std": (0.2,), "scale": 1 / 255, "resize": (240, 320), "crop": 0.9,
                   "interpolation": "bicubic"}
    assert preprocess_overrides_from_args(resize="256", crop="224") == {"resize": 256, "crop": 224}
    assert preprocess_overrides_from_args() == {}
    with raises_worded(ValueError, "--mean"):
        preprocess_overrides_from_args(mean="a,b")
    with raises_worded(ValueError, "--interpolation"):
        preprocess_overrides_from_args(interpolation="fancy")


def test_exact_resize_override_stretches_to_the_input(solid: Path) -> None:
    spec = build_spec("imagenet", (10, 20), overrides=preprocess_overrides_from_args(resize="20x10"))
    assert (spec.resize, spec.crop) == ((10, 20), None)
    assert one_sample(solid, input_shape=(1, 3, 10, 20), preprocess=spec).shape == (3, 10, 20)


def test_inconsistent_flags_are_explained() -> None:
    with pytest.raises(ValueError, match="uint8 output"):
        build_spec("imagenet", 32, dtype="uint8")
    with raises_worded(ValueError, "--scale 1"):
        build_spec("imagenet", 32, overrides={"mean": (123.7, 116.3, 103.5)})
    with pytest.raises(ValueError, match="2 values"):
        build_spec("imagenet", 32, overrides={"mean": (0.5, 0.5)})
    with pytest.raises(ValueError, match="unknown preprocess preset"):
        build_spec("vgg", 32)


def test_spec_round_trips_through_json() -> None:
    spec = build_spec("yolo", (320, 640), channels=3)
    assert pp.PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert "letterbox" in spec.describe()


@pytest.mark.parametrize(
    ("mode", "value", "expected", "note"),
    [
        ("L", 100, (100, 100, 100), "grayscale converted to RGB"),
        ("RGBA", (10, 20, 30, 0), (10, 20, 30), "RGBA converted to RGB (alpha dropped)"),
        ("I;16", 25700, (100, 100, 100), "16-bit grayscale converted to RGB"),
        ("P", 5, (5, 5, 5), "palette converted to RGB"),
    ],
)
def test_image_modes_are_converted_with_a_note(tmp_path: Path, mode: str, value, expected, note: str) -> None:
    root = tmp_path / mode.replace(";", "")
    image = Image.new(mode, (8, 8), value)
    if mode == "P":
        image.putpalette([i for c in range(256) for i in (c, c, c)])
    root.mkdir()
    image.save(root / "a.png")
    gen = RepresentativeDataGenerator(root, num_samples=1, preprocess="raw", input_size=8, layout="NHWC", num_workers=0)
    assert tuple(next(iter(gen))[4, 4]) == expected
    assert f"1 {note}" in gen.notes


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    root = tmp_path / "exif"
    root.mkdir()
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # stored: left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(root / "a.jpg", exif=exif, quality=95)
    upright = pp.load_image(str(root / "a.jpg"), None, 3)
    assert upright.size == (20, 40)
    gen = RepresentativeDataGenerator(root, num_samples=1, preprocess="raw", input_shape=(1, 3, 40, 20),
                                      preprocess_overrides={"resize": (40, 20)}, layout="NHWC", num_workers=0)
    x = next(iter(gen))
    assert x[5, 10, 0] > 200 and x[35, 10, 2] > 200  # red on top, blue at the bottom once upright
    assert "1 images rotated upright per their EXIF orientation" in gen.notes


def test_decompression_bomb_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "bomb"
    root.mkdir()
    Image.new("1", (10_000, 9_000)).save(root / "bomb.png")  # 90 Mpx, a few kB on disk
    write_image(root / "ok.png")
    gen = RepresentativeDataGenerator(root, num_samples=2, input_size=8, num_workers=0)
    assert [Path(s["path"]).name for s in gen.skipped] == ["bomb.png"]
    assert "decompression bomb" in gen.skipped[0]["reason"]
    assert len(list(gen)) == 1


def test_permission_error_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reads: simulate the OS refusing the open instead.
    root = tmp_path / "perm"
    write_image(root / "locked.png")
    write_image(root / "ok.png")
    real_open = pp._open

    def guarded(path: str):
        if path.endswith("locked.png"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path)

    monkeypatch.setattr(pp, "_open", guarded)
    gen = RepresentativeDataGenerator(root, num_samples=2, input_size=8, num_workers=0)
    assert gen.skipped == [{"path": str(root / "locked.png"), "reason": "permission denied"}]


def test_callable_replaces_per_image_preprocessing_in_worker_processes(rd_flat: Path) -> None:
    gen = RepresentativeDataGenerator(rd_flat, num_samples=4, num_workers=2,
                                      preprocess=lambda im: np.full((1, 2, 2), im.size[0], np.float32))
    xs = list(gen)
    assert len(xs) == 4 and all(x.shape == (1, 2, 2) and x[0, 0, 0] == 40 for x in xs)
    assert "custom" in gen.report()["preprocess"]
    with pytest.raises(ValueError, match="standalone"):
        gen.create_module(rd_flat / "m.py")


def test_subclass_can_override_preprocess_image(rd_flat: Path) -> None:
    class Halves(RepresentativeDataGenerator):
        def preprocess_image(self, image):
            return super().preprocess_image(image) / 2

    base = np.stack(list(RepresentativeDataGenerator(rd_flat, num_samples=3, input_size=8, num_workers=2)))
    half = np.stack(list(Halves(rd_flat, num_samples=3, input_size=8, num_workers=2)))
    np.testing.assert_allclose(half, base / 2)


def test_overrides_survive_a_json_round_trip_as_stored_on_a_run() -> None:
    import json

    overrides = preprocess_overrides_from_args(mean="0.5,0.4,0.3", std="0.2", resize="320x240", crop="200x100")
    stored = json.loads(json.dumps(overrides))
    assert build_spec("imagenet", 224, overrides=stored) == build_spec("imagenet", 224, overrides=overrides)


def test_a_wrong_count_of_per_channel_values_names_the_field_each_front_end_words():
    from conversions.engine.errors import render
    from conversions.management.cli_terms import EXPORT_FLAGS
    from conversions.wording import PORTAL_FIELD_NAMES

    with pytest.raises(ValueError) as err:
        build_spec("imagenet", 224, channels=3, overrides={"mean": (0.5, 0.5)})
    assert str(err.value).startswith("{mean} has 2 values but the model takes 3 channel(s)")
    assert render(str(err.value), EXPORT_FLAGS).startswith("--mean has 2 values")
    assert "--" not in render(str(err.value), PORTAL_FIELD_NAMES)
