"""The ``.tflite`` variants a run can build: one definition that config, reports, artifacts and pages share.

``float32`` is the reference every other variant is measured against (sizes, latencies, fidelity), so the
pipeline always builds it, asked for or not. The other variants trade accuracy for size and speed;
``priority`` orders them from most to least quantized, which is the variant a one-line summary talks about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from conversions.engine.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    name: str
    """What config, reports, artifacts and pages call it; also the ``{variant}`` of artifact file names."""
    label: str
    """What a person reads: what is in the file."""
    priority: int
    """Lower is more quantized; the primary variant of a run is the one with the lowest priority."""
    calibrated: bool
    """Needs calibration images (its activation ranges are recorded from them)."""
    aliases: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        """The file-name part that tells variants apart: ``model_int8.tflite``."""
        return self.name


VARIANTS: tuple[Variant, ...] = (
    Variant("float32", "float32", priority=4, calibrated=False, aliases=("none", "fp32")),
    Variant("float16", "float16 weights", priority=3, calibrated=False, aliases=("fp16",)),
    Variant("dynamic", "int8 weights, float activations", priority=2, calibrated=False),
    Variant("int8", "int8, full integer", priority=0, calibrated=True),
    Variant("int16x8", "int16 activations, int8 weights", priority=1, calibrated=True, aliases=("w8a16",)),
)
BY_NAME = {v.name: v for v in VARIANTS}
NAMES = tuple(v.name for v in VARIANTS)
"""In the order every table and form lists them."""
REFERENCE = "float32"
_LOOKUP = {key: v for v in VARIANTS for key in (v.name, *v.aliases)}


def variant(name: str) -> Variant:
    """The variant called ``name`` or one of its aliases (``none`` is float32); ``KeyError`` otherwise."""
    return _LOOKUP[name.strip().lower()]


def parse_variants(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"none,int8"`` -> ``("float32", "int8")``: canonical names, each once, in the order given."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in items:
        if not raw.strip():
            continue
        try:
            name = variant(raw).name
        except KeyError:
            raise ConfigError(f"{{variants}} {raw.strip()!r} is not a quantization; choose from {choices()}") from None
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError(f"{{variants}} names no quantization; choose from {choices()}")
    return tuple(out)


def choices() -> str:
    return ", ".join(f"{v.name} (or {v.aliases[0]})" if v.name == REFERENCE else v.name for v in VARIANTS)


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` in the canonical listing order."""
    wanted = set(names)
    return [n for n in NAMES if n in wanted]


def primary(names: Iterable[str]) -> str | None:
    """The most quantized of ``names``: the one a single-line summary and the history list report."""
    known = [BY_NAME[n] for n in names if n in BY_NAME]
    return min(known, key=lambda v: v.priority).name if known else None


def calibrated(names: Iterable[str]) -> bool:
    return any(BY_NAME[n].calibrated for n in names if n in BY_NAME)
