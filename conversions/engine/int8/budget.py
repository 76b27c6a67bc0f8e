"""The accuracy budget: a model measured on the held-out images against the float model."""

from __future__ import annotations

import numpy as np

from conversions.engine.report.int8_results import GuardMeasure
from conversions.engine.tensors import sqnr_db


class Budget:
    """Measures a model on the evaluation images against the float model: the run's budget figure."""

    def __init__(self, float_model: bytes, eval_tf: np.ndarray, targets: np.ndarray | None, max_drop: float) -> None:
        from conversions.engine.verify.metrics import (
            CONFIDENT_PROBABILITY,
            as_probabilities,
            is_classifier_output,
        )

        self.inputs = eval_tf
        self.max_drop = max_drop
        raw = predict_first(float_model, eval_tf)
        # Judged on the output as the model gives it: a detector's (N, 84, anchors) box tensor flattens to a
        # 2-D array too, and its "top-1" is just the largest box coordinate.
        self.usable = is_classifier_output(raw)
        self.reference = raw.reshape(len(raw), -1)
        self.targets = targets if targets is not None and (np.asarray(targets) >= 0).any() else None
        self.confident = (
            as_probabilities(self.reference).max(axis=1) >= CONFIDENT_PROBABILITY if self.usable else None
        )
        if self.targets is not None:
            self.metric = "labeled_top1_accuracy"
            self.label = "labeled top-1 accuracy (%) on the held-out evaluation images"
            self.samples = int((self.targets >= 0).sum())
            self.reference_value = self._accuracy(self.reference)
        elif self.usable and self.confident.any():
            self.metric = "confident_top1_agreement"
            self.label = (
                f"top-1 agreement (%) with the float model on held-out images it classifies with p >= "
                f"{CONFIDENT_PROBABILITY}"
            )
            self.samples = int(self.confident.sum())
            self.reference_value = 100.0
        else:
            self.metric = "top1_agreement"
            self.label = "top-1 agreement (%) with the float model on all held-out images (none is confident)"
            self.samples = len(eval_tf)
            self.reference_value = 100.0

    def _accuracy(self, out: np.ndarray) -> float:
        known = self.targets >= 0
        return float((out[known].argmax(axis=1) == self.targets[known]).mean() * 100)

    def measure(self, model: bytes) -> GuardMeasure:
        out = predict_flat(model, self.inputs)
        agree = out.argmax(axis=1) == self.reference.argmax(axis=1)
        if self.metric == "labeled_top1_accuracy":
            value = self._accuracy(out)
        elif self.metric == "confident_top1_agreement":
            value = float(agree[self.confident].mean() * 100)
        else:
            value = float(agree.mean() * 100)
        drop = self.reference_value - value
        return GuardMeasure(
            value=round(value, 2),
            drop=round(drop, 2),
            top1_agreement=round(float(agree.mean() * 100), 2),
            sqnr_db=round(sqnr_db(self.reference, out), 2),
            meets_budget=bool(drop <= self.max_drop + 1e-9),
        )


def predict_first(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """The model's first output on ``inputs``, in its own shape."""
    from conversions.engine.verify.interpreter import TFLiteModel, predict_many

    return predict_many(TFLiteModel(model), inputs)[0]


def predict_flat(model: bytes, inputs: np.ndarray) -> np.ndarray:
    out = predict_first(model, inputs)
    return out.reshape(len(out), -1)
