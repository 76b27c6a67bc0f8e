"""Detection verification: decode PyTorch and every ``.tflite`` variant, score them by mAP.

With YOLO labels for the evaluation images, each model gets mAP@0.5 and mAP@0.5:0.95 against the labels
(predictions are mapped back through the letterbox to original-image pixels, where labels live), and each
variant reports its drop from the PyTorch model. Without labels the PyTorch model's detections are the
reference and a variant's mAP against them is its fidelity (PyTorch scores 100 by definition). Both the
label mAP and the fidelity mAP are reported whenever labels exist.

``variant_metric`` / ``variant_drop`` give the accuracy guard one number per variant, in mAP points.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from PIL import Image

from conversions.engine.data.preprocess import PreprocessSpec, exif_orientation
from conversions.engine.detection.decode import (
    CONF_EVAL,
    CONF_PREDICT,
    IOU_NMS,
    IOU_NMS_EVAL,
    Detections,
    decode,
)
from conversions.engine.detection.geometry import InputGeometry
from conversions.engine.detection.head import HeadPlan
from conversions.engine.detection.metrics import MapAccumulator, read_yolo_labels
from conversions.engine.detection.prepare import forward
from conversions.engine.detection.samples import side_by_side
from conversions.engine.progress import NullProgress, Progress
from conversions.engine.report.results import PyTorchReference, VariantReport

PRIMARY_METRIC = "map50_95"
SAMPLE_IMAGES = 3
SAMPLE_VARIANTS = ("int8", "int16x8", "dynamic", "float16")


@dataclasses.dataclass
class GroundTruth:
    """Per evaluation image: its geometry (None: not invertible) and labels in original-image pixels."""

    geometries: list[InputGeometry]
    boxes: list[np.ndarray]
    classes: list[np.ndarray]


@dataclasses.dataclass
class ModelDetections:
    """One model's detections on every evaluation image, in input pixels."""

    eval: list[Detections]
    """Low threshold and ``val``'s NMS IoU, for mAP against labels."""
    shown: list[Detections]
    """Predict threshold and NMS IoU, for references and pictures."""
    ranked: list[Detections]
    """Low threshold with the predict NMS IoU: scored against another model's ``shown`` (same NMS on both)."""


def detections_of(predictions: np.ndarray, num_classes: int) -> ModelDetections:
    """``[B, 4 + nc (+ extras), N]`` in input pixels -> eval and predict-threshold detections per image."""
    evals = [decode(p, num_classes, conf=CONF_EVAL, iou=IOU_NMS_EVAL) for p in predictions]
    ranked = [decode(p, num_classes, conf=CONF_EVAL, iou=IOU_NMS) for p in predictions]
    shown = [d.above(CONF_PREDICT) for d in ranked]
    return ModelDetections(evals, shown, ranked)


def load_ground_truth(data: Any) -> tuple[GroundTruth | None, str]:
    """Labels of the evaluation images when the dataset is a labelled YOLO set and preprocessing is invertible."""
    gen = getattr(data, "generator", None)
    structure = getattr(gen, "structure", None)
    if structure is None or structure.layout != "yolo" or not structure.labelled:
        return None, "the dataset has no YOLO label files"
    spec_dict = dict(data.report.get("preprocess") or {})
    if spec_dict.get("custom"):
        return None, "a custom preprocess function cannot be inverted to compare with labels"
    fields = {f.name for f in dataclasses.fields(PreprocessSpec)}
    spec = PreprocessSpec.from_dict({k: v for k, v in spec_dict.items() if k in fields})
    from conversions.engine.data.yolo import (
        _label_path,  #Ultralytics' images/ -> labels/ rule, owned by the data engine
    )

    geometries, boxes, classes = [], [], []
    for path in data.evaluation.files:
        with Image.open(path) as image:
            width, height = image.size
            if exif_orientation(image) in (5, 6, 7, 8):
                width, height = height, width
        geometry = InputGeometry.for_image(width, height, spec)
        cls, xywhn = read_yolo_labels(_label_path(path))
        geometries.append(geometry)
        boxes.append(geometry.labels_to_image(xywhn))
        classes.append(cls)
    return GroundTruth(geometries, boxes, classes), ""


def map_against_labels(found: ModelDetections, truth: GroundTruth) -> dict[str, Any]:
    acc = MapAccumulator()
    for det, geometry, gt_boxes, gt_classes in zip(found.eval, truth.geometries, truth.boxes, truth.classes):
        acc.add(dataclasses.replace(det, boxes=geometry.input_to_image(det.boxes)), gt_boxes, gt_classes)
    return acc.result().to_dict()


def map_against_reference(found: ModelDetections, reference: ModelDetections) -> dict[str, Any]:
    """mAP of ``found`` taking the reference model's shown detections as ground truth (fidelity)."""
    acc = MapAccumulator()
    for det, ref in zip(found.ranked, reference.shown):
        acc.add(det, ref.boxes, ref.classes)
    return acc.result().to_dict()


def pytorch_predictions(plan: HeadPlan, inputs_nchw: np.ndarray) -> np.ndarray:
    return plan.canonical(forward(plan.original_module, inputs_nchw, plan.batch_step)[0])


def variant_predictions(plan: HeadPlan, model_bytes: bytes, inputs_nchw: np.ndarray, layout: str) -> np.ndarray:
    from conversions.engine.tensors import to_tf_layout
    from conversions.engine.verify.interpreter import TFLiteModel, predict_many

    outputs = predict_many(TFLiteModel(model_bytes), to_tf_layout(inputs_nchw, layout))
    return plan.merge(outputs)


def evaluate_variants(
    plan: HeadPlan,
    reports: list[VariantReport],
    pytorch: PyTorchReference,
    built: dict[str, bytes],
    data: Any,
    input_layout: str,
    progress: Progress | None = None,
) -> tuple[list[VariantReport], PyTorchReference]:
    """The variant reports with their mAP (``accuracy``) and detection details, and PyTorch's detection figures."""
    progress = progress or NullProgress()
    progress.stage("verify detections (mAP)")
    inputs = data.evaluation.inputs_nchw
    reference = detections_of(pytorch_predictions(plan, inputs), plan.num_classes)
    truth, why_not = load_ground_truth(data)
    float_map = map_against_labels(reference, truth) if truth else None
    pytorch = dataclasses.replace(pytorch, detection={
        "reference": "labels" if truth else "pytorch_detections",
        "map_against_labels": float_map,
        "no_labels_reason": why_not or None,
        "images": len(inputs),
        "detections": int(sum(len(d) for d in reference.shown)),
        "head": plan.to_dict(),
        "thresholds": {"conf_eval": CONF_EVAL, "iou_eval": IOU_NMS_EVAL, "conf_predict": CONF_PREDICT, "iou_predict": IOU_NMS},
    })
    pictured = next((r.variant for name in SAMPLE_VARIANTS for r in reports if r.variant == name), None)
    evaluated = []
    for i, report in enumerate(reports):
        progress.update(i / max(len(reports), 1), f"mAP of {report.variant}")
        found = detections_of(variant_predictions(plan, built[report.variant], inputs, input_layout), plan.num_classes)
        fidelity = map_against_reference(found, reference)
        if truth:
            mine = map_against_labels(found, truth)
            accuracy = _accuracy("labels", mine, float_map, len(inputs))
        else:
            accuracy = _accuracy("pytorch_detections", fidelity, {"map50": 100.0, "map50_95": 100.0}, len(inputs))
        accuracy["fidelity_map50"] = fidelity["map50"]
        accuracy["fidelity_map50_95"] = fidelity["map50_95"]
        progress.log(_summary_line(report.variant, accuracy))
        extra = {**report.extra, "detection": {
            "head": plan.to_dict(),
            "map_against_labels": mine if truth else None,
            "map_against_pytorch": fidelity,
            "detections": int(sum(len(d) for d in found.shown)),
        }}  # fmt: skip
        if report.variant == pictured:
            extra["detection_samples"] = _pictures(plan, data, reference, found, report.variant)
        evaluated.append(dataclasses.replace(report, accuracy=accuracy, extra=extra))
    return evaluated, pytorch


def _summary_line(variant: str, acc: dict[str, Any]) -> str:
    against = "labels" if acc["reference"] == "labels" else "PyTorch's detections"
    return (
        f"{variant}: mAP@0.5 {acc['map50']:.2f} (PyTorch {acc['pytorch_map50']:.2f}, drop {acc['drop_map50']:.2f}), "
        f"mAP@0.5:0.95 {acc['map50_95']:.2f} (PyTorch {acc['pytorch_map50_95']:.2f}, drop {acc['drop_map50_95']:.2f}) "
        f"against {against} on {acc['images']} images"
    )


def _accuracy(reference: str, mine: dict[str, Any], base: dict[str, Any], images: int) -> dict[str, Any]:
    return {
        "task": "detect",
        "metric": PRIMARY_METRIC,
        "unit": "mAP points (0-100)",
        "reference": reference,
        "map50": mine["map50"],
        "map50_95": mine["map50_95"],
        "pytorch_map50": base["map50"],
        "pytorch_map50_95": base["map50_95"],
        "drop_map50": round(base["map50"] - mine["map50"], 2),
        "drop_map50_95": round(base["map50_95"] - mine["map50_95"], 2),
        "images": images,
        "instances": mine.get("instances"),
    }


def _pictures(plan: HeadPlan, data: Any, reference: ModelDetections, found: ModelDetections, variant: str) -> list[dict]:
    """A few evaluation images where PyTorch found something, PyTorch boxes left and the variant's right."""
    spec = data.report.get("preprocess") if isinstance(data.report, dict) else None
    files = data.evaluation.files
    chosen = [i for i, d in enumerate(reference.shown) if len(d)][:SAMPLE_IMAGES] or list(range(min(SAMPLE_IMAGES, len(found.shown))))
    out = []
    for i in chosen:
        uri = side_by_side(data.evaluation.inputs_nchw[i], spec, reference.shown[i], found.shown[i], plan.class_names,
                           ("PyTorch", variant))
        out.append({
            "file": os.path.basename(files[i]) if i < len(files) else f"sample {i}",
            "image": uri,
            "pytorch_boxes": len(reference.shown[i]),
            "variant_boxes": len(found.shown[i]),
        })
    return out


def variant_metric(variant: Any) -> float | None:
    """The detection metric of a variant report (mAP@0.5:0.95 in points), or None for a non-detection one."""
    accuracy = getattr(variant, "accuracy", None) if not isinstance(variant, dict) else variant.get("accuracy")
    if not accuracy or accuracy.get("task") != "detect":
        return None
    return float(accuracy[PRIMARY_METRIC])


def variant_drop(variant: Any) -> float | None:
    """How many mAP@0.5:0.95 points the variant lost against PyTorch (against labels when they exist)."""
    accuracy = getattr(variant, "accuracy", None) if not isinstance(variant, dict) else variant.get("accuracy")
    if not accuracy or accuracy.get("task") != "detect":
        return None
    return float(accuracy["drop_" + PRIMARY_METRIC])
