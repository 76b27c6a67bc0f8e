"""The run history: newest first, filtered and paginated in the database, in a bounded number of queries."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from support.runs import bulk_create_runs

from conversions.models import Checkpoint, ConversionRun, Dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(django_user_model):
    users = [django_user_model.objects.create_user(f"user{i}", password="pw") for i in range(3)]
    checkpoints = [Checkpoint.objects.create(name=f"model{i}", version=1, input_shape=[1, 3, 8, 8]) for i in range(3)]
    datasets = [Dataset.objects.create(name=f"data{i}", source="server", path=f"/d{i}") for i in range(2)]
    return users, checkpoints, datasets


def test_history_of_20000_runs_renders_in_bounded_queries(client, catalogue, django_assert_max_num_queries):
    users, checkpoints, datasets = catalogue
    bulk_create_runs(20_000, users, checkpoints, datasets)
    client.force_login(users[0])
    # session + user, reaper (running, queued), count, page, filter choices (models, datasets, users)
    for query in ["", "?page=200", "?status=failed&model=model1", "?variant=int8&user=user2&dataset=data1"]:
        started = time.perf_counter()
        with django_assert_max_num_queries(10):
            response = client.get(reverse("conversions:history") + query)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert elapsed < 2.0, f"history{query} took {elapsed:.2f} s"
    page = response.context["page"]
    assert len(page.object_list) == 50
    assert all(r.created_by.username == "user2" and r.dataset_name == "data1" for r in page.object_list)
    assert all("int8" in r.variant_list for r in page.object_list)


def test_history_lists_newest_first_and_filters_by_variant_exactly(client, catalogue):
    users, checkpoints, datasets = catalogue
    ckpt = checkpoints[0]
    old = ConversionRun.objects.create(checkpoint=ckpt, variants="int16x8", model_name=ckpt.name, status="failed")
    new = ConversionRun.objects.create(checkpoint=ckpt, variants="none,int8", model_name=ckpt.name, created_by=users[1])
    client.force_login(users[0])
    runs = list(client.get(reverse("conversions:history")).context["page"].object_list)
    assert [r.pk for r in runs] == [new.pk, old.pk]
    int8 = client.get(reverse("conversions:history") + "?variant=int8").context["page"].object_list
    assert [r.pk for r in int8] == [new.pk], "int8 must not match int16x8"
    failed = client.get(reverse("conversions:history") + "?status=failed").context["page"].object_list
    assert [r.pk for r in failed] == [old.pk]
    mine = client.get(reverse("conversions:history") + "?user=user1").context["page"].object_list
    assert [r.pk for r in mine] == [new.pk]


def test_history_never_loads_the_report_or_log(client, catalogue, django_assert_max_num_queries):
    users, checkpoints, datasets = catalogue
    bulk_create_runs(60, users, checkpoints, datasets)
    client.force_login(users[0])
    with django_assert_max_num_queries(10) as captured:
        client.get(reverse("conversions:history"))
    page_query = next(q["sql"] for q in captured.captured_queries if "LIMIT" in q["sql"])
    for column in ('"report"', '"log"', '"config"'):
        assert column not in page_query
