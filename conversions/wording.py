"""How the portal words the engine's inputs in messages, and which form field each one belongs to."""

from __future__ import annotations

PORTAL_FIELD_NAMES: dict[str, str] = {
    "checkpoint": "the checkpoint file",
    "model": "the checkpoint's Architecture",
    "model_kwargs": "the checkpoint's architecture arguments",
    "input_shape": "the checkpoint's Input shape",
    "trust_checkpoint": "a staff member to trust the checkpoint (Mark trusted, in the admin)",
    "dataset_dir": "the Dataset",
    "dataset_type": "the dataset's type",
    "num_calib_samples": "Calibration samples",
    "num_eval_samples": "Held-out samples",
    "seed": "Seed",
    "preprocess": "Preprocessing",
    "labels_file": "the checkpoint's Labels file",
    "variants": "Variants",
    "calibration_method": "Activation ranges",
    "max_drop": "Accuracy budget",
    "force": "a new run (every run writes into a folder of its own)",
}
"""Inputs the portal does not expose keep the engine's neutral names (``engine.errors.FIELD_NAMES``)."""

RUN_FORM_FIELDS: dict[str, str] = {
    "checkpoint": "checkpoint",
    "model": "checkpoint",
    "model_kwargs": "checkpoint",
    "input_shape": "checkpoint",
    "trust_checkpoint": "checkpoint",
    "labels_file": "checkpoint",
    "dataset_dir": "dataset",
    "dataset_type": "dataset",
    "num_calib_samples": "num_calib_samples",
    "num_eval_samples": "num_eval_samples",
    "seed": "seed",
    "preprocess": "preprocess",
    "variants": "variants",
    "calibration_method": "calibration_method",
    "max_drop": "max_drop",
}
"""Engine input -> the new-run form field an error about it is shown on."""
