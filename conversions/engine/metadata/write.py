"""The metadata stage: every built ``.tflite`` gets its metadata, read back and checked before it is verified.

What goes in: the model's name, version and description; the input's size, colour space and normalisation
(``(pixel - mean) / std`` with 0-255 pixels, the converter's preprocessing; an integer input's quantization
in its description); each output's description; the class names as ``labels.txt`` on a classifier's
output. The written file is read back (metadata and labels must equal what was written) and run in LiteRT
beside the file without metadata on held-out inputs: the outputs must be bit-identical, or the file ships
without metadata and the run says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from conversions.engine.errors import hide_folders
from conversions.engine.metadata import embed
from conversions.engine.report.device_results import AssociatedFile, EmbeddedMetadata, ModelInfo, TensorInfo

LABELS_FILE = "labels.txt"
CHECKED_SAMPLES = 4


@dataclass(frozen=True)
class ModelFacts:
    """What a run knows about its model that the metadata tells a device."""

    name: str
    version: str = ""
    description: str = ""
    task: str = "classify"
    layout: str = "NHWC"
    preprocess: dict[str, Any] | None = None
    """The run's ``PreprocessSpec.to_dict()`` (mean, std, scale, channels, dtype), None without a dataset."""
    class_names: tuple[str, ...] = ()


def add_metadata(
    built: dict[str, bytes], facts: ModelFacts, inputs: np.ndarray
) -> tuple[dict[str, bytes], dict[str, EmbeddedMetadata], list[str]]:
    """``built`` with metadata in each file, what each file's metadata reads back as, and warnings.

    ``inputs`` are held-out inputs in the files' layout, for the same-outputs check."""
    out, found, warnings = dict(built), {}, []
    for variant, model in built.items():
        info, labels = describe(model, facts, variant)
        files = {LABELS_FILE: labels} if labels else {}
        written = embed.attach(model, info, files)
        back, back_files = embed.read(written)
        verified = back == info and back_files == files
        samples = inputs[:CHECKED_SAMPLES]
        unchanged = _same_outputs(model, written, samples)
        if not (verified and unchanged):
            warnings.append(
                f"{variant}: the metadata {'did not read back as written' if not verified else 'changed the outputs'}; "
                "the file is written without metadata."
            )
            continue
        out[variant] = written
        found[variant] = EmbeddedMetadata(
            metadata=back,
            labels_file=LABELS_FILE if labels else None,
            labels_count=len(facts.class_names) if labels else 0,
            verified=verified,
            outputs_unchanged=unchanged,
            checked_samples=len(samples),
        )
    return out, found, warnings


def describe(model: bytes, facts: ModelFacts, variant: str) -> tuple[ModelInfo, bytes | None]:
    """The ``ModelInfo`` of one variant and its labels file (None when the output has no class axis)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    inputs, outputs = interp.get_input_details(), interp.get_output_details()  # in the subgraph's order
    labels = None
    out_infos = []
    for d in outputs:
        classes = int(d["shape"][-1]) if len(d["shape"]) == 2 else 0
        has_labels = facts.task == "classify" and classes > 1 and len(facts.class_names) == classes
        out_infos.append(
            TensorInfo(
                name="scores" if facts.task == "classify" else "detections",
                description=_output_description(d, facts.task, classes),
                files=(AssociatedFile(LABELS_FILE, "class names in output order", 2),) if has_labels else (),
            )
        )
        if has_labels:
            labels = ("\n".join(facts.class_names) + "\n").encode("utf-8")
    info = ModelInfo(
        name=facts.name,
        # the file goes to devices and people: it names the architecture's file, not the server's folders
        description=f"{hide_folders(facts.description or facts.name)} ({variant}, converted by quantweb)",
        version=facts.version,
        author="quantweb",
        inputs=tuple(_input_info(d, facts) for d in inputs),
        outputs=tuple(out_infos),
    )
    return info, labels


def _input_info(d: dict[str, Any], facts: ModelFacts) -> TensorInfo:
    shape = [int(x) for x in d["shape"]]
    nhwc = facts.layout == "NHWC" and len(shape) == 4
    height, width, channels = (shape[1], shape[2], shape[3]) if nhwc else (shape[2], shape[3], shape[1])
    spec = facts.preprocess or {}
    mean, std = _pixel_normalisation(spec)
    dtype = np.dtype(d["dtype"])
    scale, zero = d["quantization"]
    text = f"{width}x{height} {'RGB' if channels == 3 else 'grayscale'} image, {facts.layout}, {dtype.name}"
    if mean:
        text += f"; (pixel - mean) / std with pixels 0-255, mean {_list(mean)}, std {_list(std)}"
    if dtype.kind in "iu":
        text += f"; then quantized: q = round(value / {scale:.6g}) + {zero}"
        info = np.iinfo(dtype)
        lo, hi = [float(info.min)] * channels, [float(info.max)] * channels
    elif mean:
        lo = [(0.0 - m) / s for m, s in zip(mean, std)]
        hi = [(255.0 - m) / s for m, s in zip(mean, std)]
    else:
        lo = hi = []
    return TensorInfo(
        name="image",
        description=text,
        image_size=(width, height),
        color_space="RGB" if channels == 3 else "GRAYSCALE" if channels == 1 else "UNKNOWN",
        mean=tuple(mean),
        std=tuple(std),
        stats_min=tuple(lo),
        stats_max=tuple(hi),
    )


def _pixel_normalisation(spec: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The run's ``(x * scale - mean) / std`` as ``(x - mean') / std'`` on 0-255 pixels."""
    if not spec.get("mean") or not spec.get("std"):
        return [], []
    if spec.get("dtype") == "uint8":  # raw pixels go in as they are
        return [0.0] * len(spec["mean"]), [1.0] * len(spec["std"])
    scale = float(spec.get("scale") or 1.0)
    return [float(m) / scale for m in spec["mean"]], [float(s) / scale for s in spec["std"]]


def _output_description(d: dict[str, Any], task: str, classes: int) -> str:
    dtype = np.dtype(d["dtype"])
    shape = "x".join(str(int(x)) for x in d["shape"])
    what = f"scores for {classes} classes" if task == "classify" and classes else f"{task} output"
    text = f"{what}, shape {shape}, {dtype.name}"
    if dtype.kind in "iu":
        scale, zero = d["quantization"]
        text += f"; value = (q - {zero}) * {scale:.6g}"
    return text


def _list(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _same_outputs(plain: bytes, written: bytes, inputs: np.ndarray) -> bool:
    """Raw outputs of both files on the same inputs, compared bit for bit."""
    from conversions.engine.verify.interpreter import TFLiteModel

    a, b = TFLiteModel(plain), TFLiteModel(written)
    for i in range(len(inputs)):
        a.invoke(inputs[i : i + 1])
        b.invoke(inputs[i : i + 1])
        for da, db in zip(a.outputs, b.outputs):
            if not np.array_equal(a.interpreter.get_tensor(da["index"]), b.interpreter.get_tensor(db["index"])):
                return False
    return True
