"""Typed results of getting a ``.tflite`` ready for a device: the metadata inside it and TFLite Micro readiness.

``EmbeddedMetadata`` is what a written file's ``TFLITE_METADATA`` says, as read back from the file (the
metadata stage writes it, reads it back and compares); ``MicroTarget`` is the file run in the TFLite Micro
interpreter. Both are frozen and round-trip through JSON with ``records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TENSOR_AXIS_LABELS = 2
"""``AssociatedFileType.TENSOR_AXIS_LABELS`` of the TFLite metadata schema: one label per output class."""


def f32(values: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """Values as the metadata flatbuffer stores them (float32), so written and read-back records compare equal."""
    return tuple(float(np.float32(v)) for v in values)


@dataclass(frozen=True)
class AssociatedFile:
    name: str = ""
    description: str = ""
    type: int = TENSOR_AXIS_LABELS


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor's metadata (``TensorMetadata`` of the schema)."""

    name: str = ""
    description: str = ""
    image_size: tuple[int, ...] = ()
    """``(width, height)`` of an image input (``ImageProperties.default_size``); empty for other tensors."""
    color_space: str = ""
    """``RGB`` or ``GRAYSCALE`` for an image input."""
    mean: tuple[float, ...] = ()
    """``NormalizationOptions``: the model wants ``(pixel - mean) / std`` with pixels in 0..255."""
    std: tuple[float, ...] = ()
    stats_min: tuple[float, ...] = ()
    stats_max: tuple[float, ...] = ()
    files: tuple[AssociatedFile, ...] = ()

    def __post_init__(self) -> None:
        for key in ("mean", "std", "stats_min", "stats_max"):
            object.__setattr__(self, key, f32(getattr(self, key)))
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))


@dataclass(frozen=True)
class ModelInfo:
    """A ``ModelMetadata`` flatbuffer's content, the part quantweb writes."""

    name: str = ""
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    min_parser_version: str = "1.0.0"
    """Nothing written needs a newer metadata parser (tensor-level process units, axis labels)."""


@dataclass(frozen=True)
class EmbeddedMetadata:
    """The metadata of one written ``.tflite``, as read back from its bytes."""

    metadata: ModelInfo = field(default_factory=ModelInfo)
    labels_file: str | None = None
    """Name of the label file packed into the model (a zip appended to the flatbuffer)."""
    labels_count: int = 0
    verified: bool = False
    """The read-back metadata and labels equal what was written."""
    outputs_unchanged: bool = False
    """LiteRT gives bit-identical outputs with and without the metadata, on held-out inputs."""
    checked_samples: int = 0


@dataclass(frozen=True)
class MicroTarget:
    """The file in the TFLite Micro interpreter (the ``tflite-micro`` wheel) on held-out inputs."""

    supported: bool = False
    arena_bytes: int | None = None
    """Tensor arena TFLite Micro allocated (RecordingMicroAllocator's total): the RAM the model needs."""
    flash_bytes: int = 0
    """The file's size: what the model takes in flash."""
    unsupported_ops: tuple[str, ...] = ()
    """Builtin ops TFLite Micro has no kernel for (it names the first it meets)."""
    max_abs_diff_vs_litert: float | None = None
    """Largest difference of the (dequantized) outputs against LiteRT's interpreter on the same inputs."""
    bit_exact: bool | None = None
    """The raw output tensors equal LiteRT's bit for bit."""
    samples: int = 0
    message: str = ""
    """One sentence for people: why it is not for microcontrollers, or what was measured."""
    max_abs_diff_vs_litert_reference: float | None = None
    """The same against LiteRT's reference kernels (``BUILTIN_REF``), which TFLite Micro's kernels follow."""


@dataclass(frozen=True)
class Targets:
    tflite_micro: MicroTarget | None = None


__all__ = ["AssociatedFile", "EmbeddedMetadata", "MicroTarget", "ModelInfo", "Targets", "TensorInfo", "f32"]
