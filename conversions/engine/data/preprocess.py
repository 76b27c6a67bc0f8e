"""Per-image reading and preprocessing: presets that match how models are trained.

This module imports only the standard library, numpy and Pillow, on purpose: ``standalone.py`` copies its
source verbatim into the module that ``representative_data --create-module`` writes, so that module
produces bit-identical samples without quantweb installed, and why its errors are plain ``ValueError``s
(the ``{field}`` placeholders in them are worded by whoever shows them). It stays one module (over 400 lines) for that
reason: the module it writes is this file.

Reading (``open_image``) applies the EXIF orientation, refuses decompression bombs, decodes JPEGs at a
reduced size with ``Image.draft`` when the resize step would throw those pixels away anyway, and converts
grayscale / RGBA / palette / 16-bit images to the model's channel count. Preprocessing (``transform``)
follows a frozen ``PreprocessSpec``: resize, center-crop or letterbox, then ``(x * scale - mean) / std``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

PRESETS = ("imagenet", "yolo", "inception", "raw")
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_FRACTION = 0.875
"""The classic 224/256: resize the shorter side to ``size / 0.875`` then center-crop ``size``."""
YOLO_PAD_VALUE = 114
MAX_IMAGE_PIXELS = 89_478_485
"""Pillow's own decompression-bomb threshold (about 0.25 GB of RGBA): anything larger is skipped."""
MODE_FOR_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}


@dataclass(frozen=True)
class PreprocessSpec:
    """How one image becomes one model input; JSON-able with ``to_dict`` and stored on the run.

    ``resize`` is the shorter side in pixels (an ``int``), an exact ``(H, W)``, or ``None``;
    ``crop`` is the ``(H, W)`` of the centre crop taken after resizing, or ``None``. Whatever remains is
    then resized to ``size`` if it differs. ``letterbox`` instead fits the whole image inside ``size``
    keeping its aspect ratio and pads with ``pad_value`` (YOLO). Pixel values become
    ``(x * scale - mean) / std`` per channel; ``uint8`` output keeps raw 0-255 pixels.
    """

    preset: str
    size: tuple[int, int]
    resize: int | tuple[int, int] | None
    crop: tuple[int, int] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float
    interpolation: str
    channels: int
    dtype: str
    letterbox: bool = False
    pad_value: int = YOLO_PAD_VALUE

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreprocessSpec":
        data = dict(data)
        for key in ("size", "crop", "mean", "std"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        if isinstance(data.get("resize"), list):
            data["resize"] = tuple(data["resize"])
        return cls(**data)

    def describe(self) -> str:
        """One line for the summary: ``imagenet: resize shorter side 256 (bilinear), crop 224x224, ...``."""
        steps = []
        if self.letterbox:
            steps.append(f"letterbox into {self.size[1]}x{self.size[0]} ({self.interpolation}), pad {self.pad_value}")
        else:
            if isinstance(self.resize, int):
                steps.append(f"resize shorter side to {self.resize} ({self.interpolation})")
            elif self.resize:
                steps.append(f"resize to {self.resize[1]}x{self.resize[0]} ({self.interpolation})")
            if self.crop:
                steps.append(f"center-crop {self.crop[1]}x{self.crop[0]}")
            if self.crop != self.size:
                steps.append(f"fit {self.size[1]}x{self.size[0]}")
        if self.dtype == "uint8":
            steps.append("raw 0-255 pixels")
        else:
            steps.append(f"x*{self.scale:.6g}")
            if any(m != 0 for m in self.mean) or any(s != 1 for s in self.std):
                steps.append(f"mean {_fmt(self.mean)} std {_fmt(self.std)}")
        return f"{self.preset}: " + ", ".join(steps) + f"; {self.channels} channel(s), {self.dtype}"


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def _per_channel(name: str, values: Any, channels: int) -> tuple[float, ...]:
    """One value for all channels, or one per channel; 3 values for a 1-channel model are averaged."""
    vals = tuple(float(v) for v in (values if isinstance(values, (tuple, list)) else (values,)))
    if len(vals) == 1:
        return vals * channels
    if len(vals) == channels:
        return vals
    if channels == 1 and len(vals) == 3:
        return (sum(vals) / 3.0,)
    raise ValueError(
        f"{{{name}}} has {len(vals)} values but the model takes {channels} channel(s); "
        f"give one value for all channels or exactly {channels}"
    )


def build_spec(
    preset: str = "imagenet",
    size: int | tuple[int, int] = 224,
    channels: int = 3,
    dtype: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> PreprocessSpec:
    """The spec for a preset at an input size, with custom ``mean/std/scale/resize/crop/interpolation``.

    ``size`` is ``(H, W)`` or one int; ``overrides["crop"]`` may be a fraction (``0.875``: resize the
    shorter side to ``size / 0.875``) or a crop size. ``dtype`` defaults to the preset's (``uint8`` for
    ``raw``, else ``float32``).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preprocess preset {preset!r}; choose from {', '.join(PRESETS)}")
    if channels not in MODE_FOR_CHANNELS:
        raise ValueError(f"the model's input has {channels} channels; only 1, 3 or 4 channel images are supported")
    over = dict(overrides or {})
    unknown = set(over) - {"mean", "std", "scale", "resize", "crop", "interpolation", "pad_value"}
    if unknown:
        raise ValueError(f"unknown preprocess override(s) {sorted(unknown)}; use mean, std, scale, resize, crop, interpolation")
    height, width = _pair(size)
    crop: tuple[int, int] | None = (height, width)
    crop_fraction = DEFAULT_CROP_FRACTION
    crop_over = over.get("crop")
    if isinstance(crop_over, float) and 0 < crop_over <= 1:
        crop_fraction = crop_over
    elif crop_over is not None:
        crop = _pair(crop_over)
    resize: int | tuple[int, int] | None = int(math.floor(min(height, width) / crop_fraction + 1e-9))
    base = {
        "imagenet": dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, scale=1 / 255, interpolation="bilinear", dtype="float32"),
        "inception": dict(mean=(0.5,), std=(0.5,), scale=1 / 255, interpolation="bilinear", dtype="float32"),
        "raw": dict(mean=(0.0,), std=(1.0,), scale=1.0, interpolation="bilinear", dtype="uint8"),
        "yolo": dict(mean=(0.0,), std=(1.0,), scale=1 / 255, interpolation="bilinear", dtype="float32"),
    }[preset]
    letterbox = preset == "yolo" and "resize" not in over and "crop" not in over
    if "resize" in over:
        resize = over["resize"] if isinstance(over["resize"], int) else _pair(over["resize"])
        if crop_over is None and not isinstance(resize, int):
            crop = None
    interpolation = over.get("interpolation", base["interpolation"])
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose from {', '.join(INTERPOLATIONS)}")
    out_dtype = dtype or base["dtype"]
    if out_dtype not in ("float32", "uint8"):
        raise ValueError(f"output dtype {out_dtype!r} is not float32 or uint8")
    mean = _per_channel("mean", over.get("mean", base["mean"]), channels)
    std = _per_channel("std", over.get("std", base["std"]), channels)
    scale = float(over.get("scale", base["scale"]))
    if any(s == 0 for s in std):
        raise ValueError("{std} contains 0; every channel's std must be non-zero")
    if scale <= 1 / 255 + 1e-12 and any(abs(m) > 1.5 for m in mean):
        raise ValueError(
            f"{{mean}} {_fmt(mean)} looks like 0-255 pixel values but the scale is 1/255; "
            "pass {scale} 1 to normalise raw pixel values, or give mean and std in 0-1 units"
        )
    if out_dtype == "uint8" and (scale != 1.0 or any(m != 0 for m in mean) or any(s != 1 for s in std)):
        raise ValueError(
            f"uint8 output holds raw 0-255 pixels, but preset {preset!r} normalises them; "
            "use {preprocess} raw for uint8 samples, or float32 output"
        )
    return PreprocessSpec(
        preset=preset,
        size=(height, width),
        resize=None if letterbox else resize,
        crop=None if letterbox else crop,
        mean=mean,
        std=std,
        scale=scale,
        interpolation=interpolation,
        channels=channels,
        dtype=out_dtype,
        letterbox=letterbox,
        pad_value=int(over.get("pad_value", YOLO_PAD_VALUE)),
    )


# --------------------------------------------------------------------------------------------- reading


class ImageReadError(Exception):
    """A file that cannot be used as an image; ``str(err)`` is the reason shown in the summary."""


def _open(path: str) -> Any:
    """Opens the file for reading; a separate function so tests can simulate permission errors."""
    return open(path, "rb")


def open_image(path: str, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Opens (without decoding) an image file, turning every way a file can be unusable into one reason."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise ImageReadError("broken symlink (target missing)" if os.path.islink(path) else "file not found") from None
    except PermissionError:
        raise ImageReadError("permission denied") from None
    except OSError as err:
        raise ImageReadError(f"cannot stat: {err.strerror or err}") from None
    if size == 0:
        raise ImageReadError("empty file (0 bytes)")
    try:
        fh = _open(path)
    except PermissionError:
        raise ImageReadError("permission denied") from None
    except IsADirectoryError:
        raise ImageReadError("is a directory") from None
    except OSError as err:
        raise ImageReadError(f"cannot open: {err.strerror or err}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fh)
        image._exclusive_fp = True  # as if Pillow had opened the path itself: it closes fh after load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        fh.close()
        raise ImageReadError(f"oversized image (decompression bomb, over {max_pixels:,} pixels)") from None
    except Exception as err:  # Pillow raises many types for garbage input; all mean "not an image"
        fh.close()
        raise ImageReadError(f"not a readable image ({type(err).__name__})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageReadError(f"oversized image ({width}x{height}, decompression bomb limit {max_pixels:,} pixels)")
    return image


def exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # a malformed EXIF block must not make an otherwise good image unusable
        return 1


def conversion_note(mode: str, channels: int, has_transparency: bool = False) -> str | None:
    """What converting an image of ``mode`` to ``channels`` does, for the summary; ``None`` if nothing."""
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        kind = "16-bit grayscale"
    elif mode == "F":
        kind = "32-bit float"
    elif mode in ("L", "1", "LA", "La"):
        kind = "grayscale"
    elif mode == "P":
        kind = "palette"
    elif mode in ("RGBA", "RGBa", "PA"):
        kind = "RGBA"
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        kind = mode
    else:
        kind = None
    target = MODE_FOR_CHANNELS[channels]
    if kind is None:
        return None if mode == target else f"{mode} converted to {target}"
    if (kind == "grayscale" and target == "L" and mode == "L") or (kind == "RGBA" and target == "RGBA" and mode == "RGBA"):
        return None
    alpha = " (alpha dropped)" if (kind in ("RGBA",) or has_transparency or mode == "LA") and target != "RGBA" else ""
    return f"{kind} converted to {target}{alpha}"


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Converts any Pillow mode to L, RGB or RGBA; 16-bit and float images are rescaled, not clipped."""
    target = MODE_FOR_CHANNELS[channels]
    mode = image.mode
    if mode == target:
        return image
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(image)
        if mode == "F":
            top = 1.0 if float(arr.max(initial=0.0)) <= 1.0 else 255.0
            arr8 = np.clip(arr * (255.0 / top), 0, 255)
        else:
            top = 65535.0 if mode.startswith("I;16") or int(arr.max(initial=0)) > 255 else 255.0
            arr8 = np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255)
        image = Image.fromarray(np.rint(arr8).astype(np.uint8))  # 2-D uint8 -> mode L
        return image if target == "L" else image.convert(target)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "1"):
        image = image.convert("RGBA" if mode != "1" else "L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBa"):
        image = image.convert("RGB")
    return image if image.mode == target else image.convert(target)


def draft_size(spec: PreprocessSpec, width: int, height: int, orientation: int) -> tuple[int, int]:
    """The smallest (W, H) the file may be decoded at without losing pixels the resize step keeps."""
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if spec.letterbox:
        ratio = min(spec.size[0] / height, spec.size[1] / width)
        need = (math.ceil(width * ratio), math.ceil(height * ratio))
    elif isinstance(spec.resize, int):
        need = (spec.resize, spec.resize)
    elif spec.resize:
        need = (spec.resize[1], spec.resize[0])
    else:
        return (width, height)
    if orientation in (5, 6, 7, 8):
        need = (need[1], need[0])
    return need


def load_image(path: str, spec: PreprocessSpec | None, channels: int, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decodes ``path`` upright in the model's channels, at reduced size when ``spec`` allows it."""
    source = open_image(path, max_pixels)
    try:
        orientation = exif_orientation(source)
        if spec is not None and source.format == "JPEG":
            source.draft(source.mode, draft_size(spec, source.size[0], source.size[1], orientation))
        source.load()
        image = ImageOps.exif_transpose(source) if orientation != 1 else source
        return to_channels(image, channels)
    except Exception as err:
        reason = "truncated or corrupt image data" if isinstance(err, (OSError, SyntaxError)) else "cannot decode"
        raise ImageReadError(f"{reason} ({err})") from None
    finally:
        fp = getattr(source, "fp", None)
        if fp is not None:
            fp.close()


# --------------------------------------------------------------------------------------- preprocessing


def _center_crop(image: Image.Image, height: int, width: int) -> Image.Image:
    w, h = image.size
    if (w, h) == (width, height):
        return image
    left = int(round((w - width) / 2.0))
    top = int(round((h - height) / 2.0))
    return image.crop((left, top, left + width, top + height))


def _letterbox(image: Image.Image, spec: PreprocessSpec, resample: int) -> Image.Image:
    """Ultralytics' letterbox: scale to fit, pad the rest evenly with ``pad_value``."""
    out_h, out_w = spec.size
    w, h = image.size
    ratio = min(out_h / h, out_w / w)
    new_w, new_h = int(round(w * ratio)), int(round(h * ratio))
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), resample)
    dw, dh = (out_w - new_w) / 2.0, (out_h - new_h) / 2.0
    left, top = int(round(dw - 0.1)), int(round(dh - 0.1))
    fill = (spec.pad_value,) * len(image.getbands()) if len(image.getbands()) > 1 else spec.pad_value
    canvas = Image.new(image.mode, (out_w, out_h), fill)
    canvas.paste(image, (left, top))
    return canvas


def resize_and_crop(image: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """The geometric part of ``spec``: PIL image in, PIL image of exactly ``spec.size`` out."""
    resample = INTERPOLATIONS[spec.interpolation]
    if spec.letterbox:
        return _letterbox(image, spec, resample)
    out_h, out_w = spec.size
    if isinstance(spec.resize, int):
        w, h = image.size
        ratio = spec.resize / min(w, h)
        new_w, new_h = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
        if spec.crop and (new_w, new_h) != (w, h):
            # Resize only the region the crop keeps (Pillow's ``box``): same sampling grid, far fewer pixels.
            crop_h, crop_w = min(spec.crop[0], new_h), min(spec.crop[1], new_w)
            left, top = int(round((new_w - crop_w) / 2.0)), int(round((new_h - crop_h) / 2.0))
            sx, sy = w / new_w, h / new_h
            box = (left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy)
            image = image.resize((crop_w, crop_h), resample, box=box)
        elif (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), resample)
    elif spec.resize:
        image = image.resize((spec.resize[1], spec.resize[0]), resample)
    if spec.crop:
        crop_h, crop_w = min(spec.crop[0], image.size[1]), min(spec.crop[1], image.size[0])
        image = _center_crop(image, crop_h, crop_w)
    if image.size != (out_w, out_h):
        image = image.resize((out_w, out_h), resample)
    return image


def to_array(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """HWC pixels -> normalised CHW array of ``spec.dtype``.

    Float output goes through a 256-entry table per channel holding ``x * (scale / std) - mean / std``:
    the same float32 arithmetic as computing it per pixel, at half the cost.
    """
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if spec.dtype == "uint8":
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.uint8)
    table = _table(spec.scale, spec.mean, spec.std)
    out = np.empty((pixels.shape[2], pixels.shape[0], pixels.shape[1]), dtype=np.float32)
    for channel in range(pixels.shape[2]):
        np.take(table[channel], pixels[:, :, channel], out=out[channel])
    return out


_TABLES: dict[tuple, np.ndarray] = {}


def _table(scale: float, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    key = (scale, mean, std)
    if key not in _TABLES:
        std32 = np.asarray(std, dtype=np.float32)
        mul = (np.float32(scale) / std32).astype(np.float32)
        add = (-np.asarray(mean, dtype=np.float32) / std32).astype(np.float32)
        levels = np.arange(256, dtype=np.float32)
        _TABLES[key] = np.stack([levels * mul[c] + add[c] for c in range(len(std))]).astype(np.float32)
    return _TABLES[key]


def transform(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The default per-image preprocessing: an upright image in the model's channels -> CHW array."""
    return to_array(resize_and_crop(image, spec), spec)


def to_layout(chw: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHWC":
        return np.ascontiguousarray(chw.transpose(1, 2, 0))
    return np.ascontiguousarray(chw)

