"""A run's data: the calibration stream and the held-out evaluation inputs, with their class targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from conversions.engine.config import ExportConfig
from conversions.engine.convert.tflite_variant import RepresentativeDataGen
from conversions.engine.data.labels import class_to_output, read_labels
from conversions.engine.errors import QuantwebError
from conversions.engine.model.loading import LoadedModel
from conversions.engine.progress import Progress
from conversions.engine.tensors import to_tf_layout


@dataclass
class EvaluationSet:
    inputs_nchw: np.ndarray
    labels: list[int | None]
    files: list[str]
    source: str
    targets: np.ndarray | None = None
    """Model output index of each sample's class (-1 when unknown); None when the dataset has no classes."""
    class_names: list[str] | None = None
    """Names by output index, for showing predictions (labels file, or the sorted class folders)."""


@dataclass
class PreparedData:
    generator: Any | None
    evaluation: EvaluationSet
    report: dict[str, Any]
    warnings: list[str]


def prepare_data(config: ExportConfig, loaded: LoadedModel, progress: Progress) -> PreparedData:
    """Calibration stream + held-out evaluation inputs (NCHW) from the dataset, or synthetic inputs without one."""
    spec = config.data
    if not spec.dataset_dir:
        if config.needs_calibration:
            raise QuantwebError(
                "int8 and int16x8 need calibration images: pass {dataset_dir} with images like those the model "
                "will see in deployment (an ImageFolder tree or a flat folder), or use {variants} dynamic."
            )
        inputs = _synthetic_inputs(loaded.input_shape, 16)
        note = "no dataset: fidelity measured on 16 synthetic inputs, not real images"
        return PreparedData(
            None,
            EvaluationSet(inputs, [None] * len(inputs), [], "synthetic", class_names=loaded.class_names),
            {"calibration": {"samples": 0}, "evaluation": {"samples": len(inputs), "source": "synthetic"}},
            [note],
        )

    from conversions.engine.data.generator import RepresentativeDataGenerator

    preset = spec.preprocess
    if preset == "auto":
        preset = loaded.preprocess_hint or "imagenet"
    generator = RepresentativeDataGenerator.from_spec(
        spec, calibrate=config.needs_calibration, preprocess=preset, input_shape=loaded.input_shape, dtype="float32",
        layout="NCHW",
    )
    for line in generator.summary_lines():
        progress.log(line)
    inputs, labels, files = [], [], []
    for array, item in generator.iter_evaluation():
        inputs.append(array)
        labels.append(item.label)
        files.append(item.path)
    if not inputs:
        raise QuantwebError(
            f"{spec.dataset_dir}: no held-out images are left for verification after calibration; add images or "
            "lower {num_calib_samples}."
        )
    evaluation = EvaluationSet(np.stack(inputs).astype(np.float32), labels, files, "dataset")
    _attach_targets(evaluation, generator.structure.classes, spec.labels_file, loaded)
    report = generator.report()
    report.setdefault("dataset", report.get("structure"))
    report["calibration"] = {
        **report.get("calibration", {}),
        "seed": spec.seed,
        "dataset_dir": str(spec.dataset_dir),
        "layout": generator.structure.layout,
    }
    return PreparedData(generator, evaluation, report, list(getattr(generator, "notes", [])))


def _attach_targets(evaluation: EvaluationSet, classes: list[str], labels_file: str | None, loaded: LoadedModel) -> None:
    """Maps class folders to output indices so labeled accuracy can be computed (ImageFolder data only)."""
    if not classes or all(label is None for label in evaluation.labels):
        evaluation.class_names = read_labels(labels_file) if labels_file else loaded.class_names
        return
    import torch

    with torch.no_grad():
        num_outputs = int(np.prod(first_output(loaded.module(torch.zeros(loaded.input_shape))).shape[1:]))
    names = read_labels(labels_file) if labels_file else None
    mapping = class_to_output(classes, names, num_outputs)
    evaluation.targets = np.array([mapping[lbl] if lbl is not None else -1 for lbl in evaluation.labels])
    evaluation.class_names = names or loaded.class_names or sorted(classes)


def _synthetic_inputs(shape: tuple[int, ...], count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((count, *shape[1:])).astype(np.float32)


def calibration_stream(data: PreparedData, layout: str) -> RepresentativeDataGen | None:
    if data.generator is None:
        return None
    gen = data.generator

    def stream() -> Iterable[list[np.ndarray]]:
        for sample in gen:
            yield [to_tf_layout(np.asarray(sample, dtype=np.float32)[None], layout)]

    return stream


def first_output(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out
