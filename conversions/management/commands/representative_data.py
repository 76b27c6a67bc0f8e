"""``manage.py representative_data``: detect a dataset, sample it, show what calibration would see.

Thin on purpose: flags -> ``RepresentativeDataGenerator`` -> summary, first batches, optional outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversions.engine.config import DEFAULT_CALIBRATION_SAMPLES, PREPROCESS_NAMES, DataSpec, parse_input_shape
from conversions.engine.data.generator import LAYOUTS, RepresentativeDataGenerator
from conversions.engine.data.options import preprocess_overrides_from_args
from conversions.engine.data.structure import DATASET_TYPES
from conversions.engine.errors import QuantwebError
from conversions.management.cli_terms import REPRESENTATIVE_DATA_FLAGS, cli_message


class Command(BaseCommand):
    help = "Detect a dataset's layout, draw a seeded calibration sample, preprocess it and print what it looks like."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data-dir", "--dataset-dir", dest="data_dir", required=True, help="image folder, YOLO data.yaml or a text file of image paths")
        parser.add_argument("--dataset-type", default="auto", help=f"one of {', '.join(DATASET_TYPES)}")
        parser.add_argument("--num-calib-samples", "--num-samples", dest="num_calib_samples", type=int,
                            default=DEFAULT_CALIBRATION_SAMPLES,
                            help=f"calibration images (default {DEFAULT_CALIBRATION_SAMPLES}; --num-samples is the "
                            "older spelling)")  # fmt: skip
        parser.add_argument("--num-eval-samples", type=int, default=0, help="held-out images, disjoint from calibration")
        parser.add_argument("--split", default=None, help="split folder to use (default: val, then test, then train)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--preprocess", default="auto",
                            help=f"one of {', '.join(PREPROCESS_NAMES)}; auto: yolo for YOLO datasets, imagenet otherwise")
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--input-size", type=int, default=224)
        size.add_argument("--input-shape", default=None, help="the model's input N,C,H,W, e.g. 1,3,224,224 (C sets channels)")
        parser.add_argument("--layout", default="NCHW", type=str.upper, choices=LAYOUTS,
                            help="NHWC for the TensorFlow model onnx2tf writes, NCHW for PyTorch/ONNX")
        parser.add_argument("--dtype", default=None, choices=("float32", "uint8"), help="default: the preset's")
        parser.add_argument("--mean", default=None, help="per-channel mean, e.g. 0.485,0.456,0.406 (or one value)")
        parser.add_argument("--std", default=None, help="per-channel std (or one value)")
        parser.add_argument("--scale", default=None, help="pixel multiplier before mean/std, e.g. 1/255 or 1")
        parser.add_argument("--resize", default=None, help="shorter side N, or exact WxH")
        parser.add_argument("--crop", default=None, help="center crop N or WxH, or a fraction such as 0.875")
        parser.add_argument("--interpolation", default=None, help="nearest, bilinear, bicubic, lanczos, box, hamming")
        parser.add_argument("--workers", type=int, default=None, help="decode processes (default min(2, CPUs); 0 = in-process)")
        parser.add_argument("--test-batches", type=int, default=3, help="print statistics of the first N batches")
        parser.add_argument("--output", default=None, help="write the calibration samples to this .npz")
        parser.add_argument("--create-module", default=None,
                            help="write a standalone Python module (numpy + Pillow only) that regenerates the samples")
        parser.add_argument("--force", action="store_true", help="replace existing --output/--create-module files")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            # Every value is checked here, as export_models checks it, before any file is read or written.
            spec = DataSpec(
                dataset_dir=opts["data_dir"], dataset_type=opts["dataset_type"], split=opts["split"],
                num_calib_samples=opts["num_calib_samples"], num_eval_samples=opts["num_eval_samples"],
                seed=opts["seed"], preprocess=opts["preprocess"], num_workers=opts["workers"],
                preprocess_overrides=preprocess_overrides_from_args(
                    mean=opts["mean"], std=opts["std"], scale=opts["scale"], resize=opts["resize"],
                    crop=opts["crop"], interpolation=opts["interpolation"],
                ),
            )  # fmt: skip
            input_shape = parse_input_shape(opts["input_shape"], opts["input_size"])
            gen = RepresentativeDataGenerator.from_spec(spec, input_shape=input_shape, dtype=opts["dtype"],
                                                        layout=opts["layout"])  # fmt: skip
            gen.print_summary(file=self.stdout)
            self._print_batches(gen, opts["test_batches"])
            if opts["output"]:
                samples = gen.save(opts["output"], force=opts["force"])
                self.stdout.write(f"Wrote {samples.shape[0]} samples {samples.shape[1:]} {samples.dtype} to {opts['output']}")
            if opts["create_module"]:
                path = gen.create_module(opts["create_module"], force=opts["force"])
                self.stdout.write(f"Wrote standalone module {path} (python {path.name} --output calib.npz)")
        except (QuantwebError, ValueError) as err:
            raise CommandError(cli_message(err, REPRESENTATIVE_DATA_FLAGS)) from None

    def _print_batches(self, gen: RepresentativeDataGenerator, count: int) -> None:
        for i, (batch,) in enumerate(gen.generate_tflite_batches()):
            if i >= count:
                break
            x = batch.astype(np.float64)
            self.stdout.write(
                f"batch {i}: shape {batch.shape} {batch.dtype} min {x.min():.4f} max {x.max():.4f} mean {x.mean():.4f}"
            )
        if gen.skipped:
            self.stdout.write(f"{len(gen.skipped)} files skipped so far (see above)")
