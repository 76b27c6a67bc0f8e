"""The API's run list holds the history page's bounds: a few queries whatever the number of runs."""

from __future__ import annotations

import pytest
from support.runs import bulk_create_runs

from conversions.models import ApiToken, Checkpoint, Dataset

pytestmark = pytest.mark.django_db


def test_the_run_list_of_20000_runs_answers_in_three_queries(client, django_user_model, django_assert_num_queries):
    users = [django_user_model.objects.create_user(f"user{i}", password="pw") for i in range(3)]
    checkpoints = [Checkpoint.objects.create(name=f"model{i}", version=1, input_shape=[1, 3, 8, 8]) for i in range(3)]
    datasets = [Dataset.objects.create(name=f"data{i}", source="server", path=f"/d{i}") for i in range(2)]
    bulk_create_runs(20_000, users, checkpoints, datasets)
    token = ApiToken.issue(users[0])[1]
    headers = {"Authorization": f"Bearer {token}"}
    client.get("/api/v1/runs/", headers=headers)  # the token's first use records when (one UPDATE a minute)
    for query in ["", "page=200", "status=failed&model=model1", "variant=int8&user=user2&dataset=data1"]:
        with django_assert_num_queries(3):  # the token with its user, COUNT(*), one page of plain columns
            response = client.get(f"/api/v1/runs/?{query}&page_size=100", headers=headers)
        assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == 100
    assert all(r["user"] == "user2" and r["dataset"] == "data1" and "int8" in r["variants"] for r in results)
