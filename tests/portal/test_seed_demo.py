"""seed_demo, which the README's main command runs: the demo checkpoint, photo dataset and one int8 run."""

from __future__ import annotations

import io

import django_rq
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from support.workers import purge_queue

from conversions.engine.config import ExportConfig
from conversions.models import Checkpoint, ConversionRun, Dataset

pytestmark = pytest.mark.django_db


def test_seed_demo_registers_the_demo_once_and_queues_one_int8_run(django_capture_on_commit_callbacks):
    queue = django_rq.get_queue(settings.RQ_QUEUE_NAME)
    purge_queue(queue)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call_command("seed_demo", "--run", stdout=io.StringIO())
        with django_capture_on_commit_callbacks(execute=True):
            call_command("seed_demo", "--run", stdout=io.StringIO())  # idempotent

        dataset = Dataset.objects.get(name="demo-photos")
        assert dataset.structure["num_images"] == 288
        assert Checkpoint.objects.get().architecture == "efficientnet-lite0"
        run = ConversionRun.objects.get()
        config = ExportConfig.from_dict(run.config)
        assert config.variants == ("int8",) and config.data.num_calib_samples == 100
        assert config.data.num_eval_samples == 100 and config.data.dataset_dir.endswith("demo/photos/crops")
        assert run.status == "queued" and queue.count == 1
    finally:
        purge_queue(queue)


def test_seed_demo_refuses_a_bad_sample_count_in_its_own_flag_and_queues_nothing():
    with pytest.raises(CommandError) as err:
        call_command("seed_demo", "--run", "--samples", "0", stdout=io.StringIO())
    assert str(err.value) == "--samples 0 must be 1 or more images, e.g. 100"
    assert not ConversionRun.objects.exists()
