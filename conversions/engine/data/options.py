"""CLI/form flags -> preprocessing overrides, parsed once for ``representative_data`` and ``export_models``."""

from __future__ import annotations

from typing import Any

from conversions.engine.data.preprocess import INTERPOLATIONS
from conversions.engine.errors import ConfigError


def _floats(name: str, text: str | float | list | tuple) -> tuple[float, ...]:
    if isinstance(text, (int, float)):
        return (float(text),)
    if isinstance(text, (list, tuple)):
        return tuple(float(v) for v in text)
    try:
        return tuple(_number(p) for p in str(text).split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{{{name}}} {text!r} is not a comma-separated list of numbers, e.g. 0.485,0.456,0.406") from None


def _number(text: str) -> float:
    """``0.5`` or a fraction such as ``1/255``."""
    text = text.strip()
    if "/" in text:
        num, den = text.split("/", 1)
        if float(den) == 0:
            raise ValueError(f"{text} divides by zero")
        return float(num) / float(den)
    return float(text)


def _size(name: str, text: str | int | tuple | list) -> int | tuple[int, int]:
    """``256`` -> 256; ``320x240`` (W x H) -> (240, 320) as (H, W)."""
    if isinstance(text, (tuple, list)):
        return (int(text[0]), int(text[1]))  # already (H, W)
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v <= 0 for v in values):
        raise ConfigError(f"{{{name}}} {text!r} is not a size; give N or WxH in pixels, e.g. 256 or 320x240")
    return values[0] if len(values) == 1 else (values[1], values[0])


def preprocess_overrides_from_args(
    mean: str | float | None = None,
    std: str | float | None = None,
    scale: str | float | None = None,
    resize: str | int | None = None,
    crop: str | int | float | None = None,
    interpolation: str | None = None,
) -> dict[str, Any]:
    """Parses the custom preprocessing flags once, for ``representative_data`` and ``export_models`` alike.

    ``--mean/--std``: one value for all channels or one per channel; ``--scale``: the pixel multiplier
    (``1/255``, ``1``); ``--resize``: shorter side ``N`` or exact ``WxH``; ``--crop``: a size ``N``/``WxH``
    or a fraction ``0.875``; ``--interpolation``: nearest, bilinear, bicubic, lanczos, box, hamming.
    Returns only the flags given, ready for ``build_spec(overrides=...)``.
    """
    out: dict[str, Any] = {}
    if mean is not None:
        out["mean"] = _floats("mean", mean)
    if std is not None:
        out["std"] = _floats("std", std)
        if 0 in out["std"]:  # each channel is divided by its std
            raise ConfigError(f"{{std}} {std!r} contains 0; every channel's std must be non-zero, e.g. 0.229,0.224,0.225")
    if scale is not None:
        try:
            out["scale"] = _number(str(scale))
        except ValueError:
            raise ConfigError(f"{{scale}} {scale!r} is not a number; e.g. 1/255 or 1") from None
        if out["scale"] <= 0:
            raise ConfigError(f"{{scale}} {scale!r} must be positive, e.g. 1/255 or 1")
    if resize is not None:
        out["resize"] = _size("resize", resize)
    if crop is not None:
        if isinstance(crop, float) or (isinstance(crop, str) and "." in crop):
            fraction = float(crop)
            if not 0 < fraction <= 1:
                raise ConfigError(f"{{crop}} {crop!r}: a fraction must be in (0, 1], e.g. 0.875")
            out["crop"] = fraction
        else:
            out["crop"] = _size("crop", crop)
    if interpolation is not None:
        name = interpolation.lower()
        if name not in INTERPOLATIONS:
            raise ConfigError(f"{{interpolation}} {interpolation!r} is not one of {', '.join(INTERPOLATIONS)}")
        out["interpolation"] = name
    return out
