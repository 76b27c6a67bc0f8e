"""Cancel and re-run from the pages follow the same rule as the API: the run's owner or staff."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversions.models import Checkpoint, ConversionRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_user_model):
    owner = django_user_model.objects.create_user("owner", password="pw")
    ckpt = Checkpoint.objects.create(name="m", version=1, architecture="efficientnet-lite0", input_shape=[1, 3, 8, 8])
    return ConversionRun.objects.create(checkpoint=ckpt, variants="float32", model_name="m", created_by=owner)


def test_another_user_may_not_cancel_or_rerun_a_run_from_the_page(client, django_user_model, run):
    client.force_login(django_user_model.objects.create_user("other", password="pw"))
    assert client.post(reverse("conversions:run_cancel", args=[run.pk])).status_code == 403
    assert client.post(reverse("conversions:run_rerun", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == "queued" and ConversionRun.objects.count() == 1


def test_the_owner_cancels_and_is_told_when_the_run_had_ended(client, run):
    client.force_login(run.created_by)
    client.post(reverse("conversions:run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == "cancelled" and run.error == "Cancelled by owner."
    page = client.post(reverse("conversions:run_cancel", args=[run.pk]), follow=True)
    assert "had already ended (cancelled)" in page.content.decode()
