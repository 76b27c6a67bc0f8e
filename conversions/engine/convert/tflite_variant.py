"""TensorFlow graph -> ``.tflite`` bytes for one variant.

Variants (``variants.VARIANTS``): ``float32``, ``float16`` (fp16 weights), ``dynamic`` (int8 weights, float activations, no
calibration), ``int8`` (full integer, calibrated), ``int16x8`` (int16 activations, int8 weights, calibrated).
Calibration data arrives as a *callable* returning a fresh iterator of ``[array]`` per sample, which is what
``TFLiteConverter.representative_dataset`` takes, so any size streams in bounded memory.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from conversions.engine.errors import ConversionError
from conversions.engine.progress import NullProgress, Progress
from conversions.engine.variants import variant as canonical

log = logging.getLogger("quantweb.engine")

RepresentativeDataGen = Callable[[], Iterable[list[np.ndarray]]]


def convert_variant(
    concrete_function: Any,
    variant: str,
    representative_data_gen: RepresentativeDataGen | None = None,
    io_type: str = "float32",
    progress: Progress | None = None,
    expected_samples: int | None = None,
) -> tuple[bytes, list[str]]:
    """Returns the flatbuffer and notes (e.g. a fallback from integer-only ops)."""
    import tensorflow as tf

    progress = progress or NullProgress()
    variant = canonical(variant).name
    notes: list[str] = []

    def make_converter() -> Any:
        conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function])
        if variant == "float32":
            return conv
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            conv.target_spec.supported_types = [tf.float16]
        elif variant in ("int8", "int16x8"):
            if representative_data_gen is None:
                raise ConversionError(
                    f"the {variant} variant needs calibration data; pass {{dataset_dir}} with images like the ones "
                    "the model will see (or choose {variants} dynamic, which needs none)."
                )
            conv.representative_dataset = _counting(representative_data_gen, progress, expected_samples)
        return conv

    conv = make_converter()
    if variant == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        _set_io(conv, io_type, tf.int8)
    elif variant == "int16x8":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if io_type != "float32":
            notes.append(f"int16x8 keeps float32 input/output; the int8 input/output type {io_type} applies to int8 only")
    try:
        return conv.convert(), notes
    except Exception as err:
        if variant not in ("int8", "int16x8"):
            raise ConversionError(f"TFLite conversion of the {variant} variant failed: {_first_line(err)}") from None
        # Some ops have no integer kernel; fall back to float kernels for them and say so in the report.
        log.warning("integer-only %s conversion failed (%s); retrying with float fallback", variant, _first_line(err))
        notes.append(f"integer-only conversion failed ({_first_line(err)}); ops without an integer kernel stay float")
        conv = make_converter()
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if variant == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        if variant == "int8":
            _set_io(conv, io_type, tf.int8)
        try:
            return conv.convert(), notes
        except Exception as err2:
            raise ConversionError(f"TFLite {variant} conversion failed: {_first_line(err2)}") from None


def _set_io(conv: Any, io_type: str, default_int: Any) -> None:
    import tensorflow as tf

    if io_type == "float32":
        return
    dtype = {"uint8": tf.uint8, "int8": tf.int8}[io_type]
    conv.inference_input_type = dtype
    conv.inference_output_type = dtype


def _counting(gen: RepresentativeDataGen, progress: Progress, expected: int | None) -> Callable[[], Iterator]:
    def wrapped() -> Iterator[list[np.ndarray]]:
        count = 0
        for sample in gen():
            count += 1
            if expected:
                progress.update(min(count / expected, 1.0), f"{count}/{expected} calibration samples")
            yield [np.asarray(a, dtype=np.float32) for a in sample]
        if count == 0:
            raise ConversionError("the calibration data stream yielded no samples; check {dataset_dir}.")

    return wrapped


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    lines = [ln for ln in text.splitlines() if "error" in ln.lower()] or text.splitlines() or [type(err).__name__]
    return lines[0][:300]
