"""How the command line words the engine's inputs: as the flags that set them."""

from __future__ import annotations

from conversions.engine.errors import QuantwebError, render

EXPORT_FLAGS: dict[str, str] = {
    "checkpoint": "--checkpoint",
    "model": "--model",
    "model_kwargs": "--model-kwargs",
    "input_shape": "--input-shape",
    "input_size": "--input-size",
    "trust_checkpoint": "--trust-checkpoint",
    "dataset_dir": "--dataset-dir",
    "dataset_type": "--dataset-type",
    "split": "--split",
    "num_calib_samples": "--num-calib-samples",
    "num_eval_samples": "--num-eval-samples",
    "seed": "--seed",
    "num_workers": "--workers",
    "preprocess": "--preprocess",
    "mean": "--mean",
    "std": "--std",
    "scale": "--scale",
    "resize": "--resize",
    "crop": "--crop",
    "interpolation": "--interpolation",
    "labels_file": "--labels",
    "variants": "--quantize",
    "io_type": "--io",
    "output": "--output",
    "output_dir": "--output-dir",
    "force": "--force",
    "formats": "--format",
    "latency_runs": "--latency-runs",
    "latency_threads": "--threads",
    "task": "--task",
    "detect_head": "--detect-head",
    "calibration_method": "--calibration",
    "max_drop": "--max-drop",
    "max_fallback": "--max-fallback",
    "bias_correction": "--bias-correction",
}
"""``manage.py export_models``."""

REPRESENTATIVE_DATA_FLAGS: dict[str, str] = {
    **EXPORT_FLAGS,
    "dataset_dir": "--data-dir",
}
"""``manage.py representative_data``: the same words, but its dataset flag is spelled the older way (both
commands accept both spellings of it; ``--num-samples`` stays an alias of ``--num-calib-samples``)."""


def cli_message(err: BaseException, flags: dict[str, str] = EXPORT_FLAGS) -> str:
    """An engine error (or a plain ``ValueError`` from a stand-alone module) worded with ``flags``."""
    if isinstance(err, QuantwebError):
        return err.render(flags)
    return render(str(err), flags)
