"""``manage.py export_models``: a PyTorch checkpoint becomes verified ``.tflite`` files in one command.

Flags are parsed once into an ``ExportConfig``, which checks every value: the flags offer no ``choices`` of
their own, so a bad value gets the engine's one-line message, worded with the flag, and nothing is recorded.
Only then is the run recorded as a ``ConversionRun`` (source "cli") and executed in this process through the
same ``execute_run`` the RQ worker uses.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from conversions.engine.config import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION,
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_EVALUATION_SAMPLES,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_MAX_FALLBACK,
    DETECT_HEADS,
    IO_TYPES,
    PREPROCESS_NAMES,
    TASKS,
    DataSpec,
    ExportConfig,
    ModelSpec,
    parse_input_shape,
)
from conversions.engine.data.options import preprocess_overrides_from_args
from conversions.engine.data.structure import DATASET_TYPES
from conversions.engine.errors import ConfigError, QuantwebError, render
from conversions.engine.progress import TerminalProgress
from conversions.engine.variants import parse_variants
from conversions.management.cli_terms import EXPORT_FLAGS, cli_message


def parse_model_kwargs(items: list[str]) -> dict[str, Any]:
    """``["num_classes=7", "dropout=0.1", "name=x"]`` -> ``{"num_classes": 7, "dropout": 0.1, "name": "x"}``."""
    out: dict[str, Any] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--model-kwargs {part!r} is not name=value, e.g. num_classes=7")
            out[key.strip()] = _literal(value.strip())
    return out


def _one_of(choices: tuple[str, ...]) -> str:
    return f"one of {', '.join(choices)}"


def _literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class Command(BaseCommand):
    help = "Convert a PyTorch model to verified TFLite (float32/float16/dynamic/int8/int16x8) via ONNX and onnx2tf."

    def add_arguments(self, parser: CommandParser) -> None:
        model = parser.add_argument_group("model")
        model.add_argument("--checkpoint", help="state dict (.pth/.pt), wrapped checkpoint, pickled module, or .pt2")
        model.add_argument("--model", help="package.module:factory, path/to/file.py:factory, or efficientnet-lite0")
        model.add_argument("--model-kwargs", action="append", default=[], help="factory keyword args, e.g. num_classes=7")
        size = model.add_mutually_exclusive_group()
        size.add_argument("--input-size", type=int, default=224, help="square input side (default 224)")
        size.add_argument("--input-shape", help="N,C,H,W for any other shape, e.g. 1,1,28,28")
        model.add_argument("--trust-checkpoint", action="store_true",
                           help="allow what runs code: unpickling a whole nn.Module, a .pt2 with pickled payloads, "
                           "a --model that is not a built-in name (a module or .py file is imported)")
        model.add_argument("--task", default="auto",
                           help=f"{_one_of(TASKS)}; detect: YOLO-style [B, 4+classes, N] output, head made "
                           "int8-safe, verified by mAP; auto: detect for an Ultralytics checkpoint or a YOLO dataset with such an output")
        model.add_argument("--detect-head", default="auto",
                           help=f"{_one_of(DETECT_HEADS)}; int8-safe detection head: normalize coordinates before "
                           "the box+score concat, split boxes and scores into two outputs, or none (naive); auto = split, "
                           "measured best (docs/detection.md)")

        out = parser.add_argument_group("output")
        out.add_argument("--format", default="tflite",
                         help="tflite, or also keep the ONNX file / SavedModel (onnx, saved_model, all)")
        out.add_argument("--quantize", default="int8",
                         help="none (float32), float16, dynamic, int8, int16x8; comma-separated for several")
        out.add_argument("--io", default="float32", help=f"int8 model's input/output type, {_one_of(IO_TYPES)}")
        out.add_argument("--output", help="the .tflite path (one variant)")
        out.add_argument("--output-dir", help="folder for several variants and the report")
        out.add_argument("--force", action="store_true", help="replace existing outputs")
        out.add_argument("--no-metadata", action="store_true",
                         help="write no TFLite metadata (normalisation, input size, labels) into the .tflite files")

        data = parser.add_argument_group("calibration and verification data")
        data.add_argument("--dataset-dir", "--data-dir", dest="dataset_dir",
                          help="ImageFolder tree, YOLO dataset or flat folder of images")
        data.add_argument("--dataset-type", default="auto", help=_one_of(DATASET_TYPES))
        data.add_argument("--split", help="split to calibrate on (default val, then test, then train)")
        data.add_argument("--num-calib-samples", type=int, default=DEFAULT_CALIBRATION_SAMPLES,
                          help=f"calibration images (default {DEFAULT_CALIBRATION_SAMPLES})")
        data.add_argument("--num-eval-samples", type=int, default=DEFAULT_EVALUATION_SAMPLES,
                          help=f"held-out images for verification (default {DEFAULT_EVALUATION_SAMPLES})")
        data.add_argument("--seed", type=int, default=0)
        data.add_argument("--preprocess", default="auto",
                          help=f"{_one_of(PREPROCESS_NAMES)}; auto: the model's own (imagenet for the built-in), "
                          "else imagenet")
        for flag, help_text in (
            ("--mean", "per-channel mean, e.g. 0.485,0.456,0.406"),
            ("--std", "per-channel std"),
            ("--scale", "pixel multiplier, e.g. 1/255"),
            ("--resize", "shorter side N or WxH"),
            ("--crop", "center crop N, WxH or fraction"),
            ("--interpolation", "nearest, bilinear, bicubic, ..."),
        ):
            data.add_argument(flag, help=help_text)
        data.add_argument("--workers", type=int, help="image decode processes")
        data.add_argument("--labels", help="class names, one per line in output order (default: sorted class folders)")

        verify = parser.add_argument_group("verification")
        verify.add_argument("--latency-runs", type=int, default=DEFAULT_LATENCY_RUNS,
                            help=f"timed runs per model (at least {DEFAULT_LATENCY_RUNS})")
        verify.add_argument("--threads", help="interpreter threads to time, e.g. 1,2 (default 1; 1,2 for several variants)")
        verify.add_argument("--debug", action="store_true", help="show tracebacks and the full per-layer error table")

        guard = parser.add_argument_group("int8 accuracy (activation ranges, per-layer error, float fallback)")
        guard.add_argument("--calibration", default=DEFAULT_CALIBRATION,
                           help=f"how int8 activation ranges are chosen, {_one_of(CALIBRATION_METHODS)} "
                           f"(default {DEFAULT_CALIBRATION})")
        guard.add_argument("--max-drop", type=float, metavar="D",
                           help="accuracy budget in points (top-1 agreement on confidently classified held-out images, "
                           "or labeled top-1); int8 keeps the most damaging ops in float until it holds, or exits 1")
        guard.add_argument("--max-fallback", type=float, default=DEFAULT_MAX_FALLBACK, metavar="F",
                           help="at most this fraction of ops kept in float to meet --max-drop "
                           f"(default {DEFAULT_MAX_FALLBACK})")
        guard.add_argument("--bias-correction", action="store_true",
                           help="int8: fold each conv/FC op's mean output error on calibration images into its bias, "
                           "op by op in depth order (weight rounding; ~30 s on EfficientNet-Lite0)")
        verify.add_argument("--no-record", action="store_true",
                            help="do not record the run in the portal database")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            config = self.build_config(opts)
        except ValueError as err:
            raise CommandError(cli_message(err)) from None
        progress = TerminalProgress(stream=self.stderr._out if hasattr(self.stderr, "_out") else None)
        try:
            report = self.run_conversion(config, progress, record=not opts["no_record"])
        except QuantwebError as err:
            progress.close()
            if opts["debug"]:
                raise
            raise CommandError(cli_message(err)) from None
        progress.close()
        from conversions.engine.report.summary import format_summary

        self.stdout.write(format_summary(report, EXPORT_FLAGS))
        missed = report.budget_misses()
        if missed:  # the file was written as <name>_over_budget.tflite; the exit status says so too
            raise CommandError(render(" ".join(missed), EXPORT_FLAGS))

    def run_conversion(self, config: ExportConfig, progress: TerminalProgress, record: bool):
        if not record:
            from conversions.engine.pipeline import run_export

            return run_export(config, progress)
        from conversions.models import ConversionRun

        try:
            run = ConversionRun.launch(config, source=ConversionRun.Source.CLI, immediate=True, progress=progress)
        except DatabaseError as err:
            raise CommandError(
                f"could not record the run in the database ({err}); run `python manage.py migrate` first, "
                "or pass --no-record."
            ) from None
        return run.export_report()

    @staticmethod
    def build_config(opts: dict[str, Any]) -> ExportConfig:
        # Benchmarks ask the engine for a few timed runs; a person reading the summary needs enough for a p90.
        if opts["latency_runs"] < DEFAULT_LATENCY_RUNS:
            raise ConfigError(
                f"{{latency_runs}} {opts['latency_runs']} is too few for the median and p90 to mean something; "
                f"give {DEFAULT_LATENCY_RUNS} or more, e.g. {DEFAULT_LATENCY_RUNS}"
            )
        overrides = preprocess_overrides_from_args(
            mean=opts["mean"], std=opts["std"], scale=opts["scale"], resize=opts["resize"], crop=opts["crop"],
            interpolation=opts["interpolation"],
        )
        variants = parse_variants(opts["quantize"])
        default_threads = "1,2" if len(variants) > 1 else "1"
        try:
            threads = tuple(int(t) for t in str(opts["threads"] or default_threads).split(",") if t.strip())
        except ValueError:
            raise ConfigError(f"{{latency_threads}} {opts['threads']!r} is not a list of integers, e.g. 1,2") from None
        return ExportConfig(
            model=ModelSpec(
                checkpoint=opts["checkpoint"],
                model=opts["model"],
                model_kwargs=parse_model_kwargs(opts["model_kwargs"]),
                input_shape=parse_input_shape(opts["input_shape"], opts["input_size"]),
                trust_checkpoint=opts["trust_checkpoint"],
            ),
            data=DataSpec(
                dataset_dir=opts["dataset_dir"],
                dataset_type=opts["dataset_type"],
                split=opts["split"],
                num_calib_samples=opts["num_calib_samples"],
                num_eval_samples=opts["num_eval_samples"],
                seed=opts["seed"],
                preprocess=opts["preprocess"],
                preprocess_overrides=overrides,
                num_workers=opts["workers"],
                labels_file=opts["labels"],
            ),
            variants=variants,
            task=opts.get("task", "auto"),
            detect_head=opts.get("detect_head", "auto"),
            io_type=opts["io"],
            output=opts["output"],
            output_dir=opts["output_dir"],
            formats=(opts["format"],),
            force=opts["force"],
            latency_runs=opts["latency_runs"],
            latency_threads=threads,
            debug=opts["debug"],
            calibration_method=opts["calibration"],
            max_drop=opts["max_drop"],
            max_fallback=opts["max_fallback"],
            bias_correction=opts.get("bias_correction", False),
            metadata=not opts.get("no_metadata", False),
        )
