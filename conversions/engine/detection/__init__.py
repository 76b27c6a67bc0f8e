"""Detection models: int8 export that keeps boxes and scores, verified by mAP on YOLO labels.

The pipeline calls four functions, in this order:

- ``load_ultralytics(spec)``: an Ultralytics checkpoint as a plain module (None for any other file);
- ``resolve_task(config, loaded)``: ``classify`` or ``detect`` (``--task``, default auto);
- ``prepare_head(task, config, loaded, data, onnx_path)``: checks output channel ranges and, for a detector,
  makes the head int8-safe in the ONNX graph; returns the ``HeadPlan`` that says how to read outputs back;
- ``evaluate_variants(plan, reports, pytorch, built, data, layout)``: mAP per variant into the reports.

``variant_metric`` / ``variant_drop`` expose a variant's mAP for the accuracy guard.
"""

from conversions.engine.config import DETECT_HEADS as HEAD_MODES
from conversions.engine.config import TASKS
from conversions.engine.detection.evaluate import (
    evaluate_variants,
    variant_drop,
    variant_metric,
)
from conversions.engine.detection.head import (
    DEFAULT_HEAD_MODE,
    HeadPlan,
    range_warnings,
)
from conversions.engine.detection.prepare import prepare_head, resolve_task
from conversions.engine.model.ultralytics import (
    is_ultralytics_checkpoint,
    load_ultralytics,
)

__all__ = [
    "DEFAULT_HEAD_MODE",
    "HEAD_MODES",
    "TASKS",
    "HeadPlan",
    "evaluate_variants",
    "is_ultralytics_checkpoint",
    "load_ultralytics",
    "prepare_head",
    "range_warnings",
    "resolve_task",
    "variant_drop",
    "variant_metric",
]
