"""The compare page: several runs' variants side by side in one table and the same charts, in bounded queries."""

from __future__ import annotations

import pytest
from django.urls import reverse
from support.runs import record_benchmark_runs, record_compare_runs

pytestmark = pytest.mark.django_db
VARIANTS = ["float32", "float16", "dynamic", "int8", "int16x8"]


@pytest.fixture
def runs(portal_report, django_user_model):
    user = django_user_model.objects.create_user("ada", password="pw")
    return user, *record_compare_runs(portal_report, user)


def _compare(client, *ids):
    return client.get(reverse("conversions:run_compare") + "?ids=" + ",".join(str(i) for i in ids))


def test_three_runs_share_one_table_and_the_charts_label_each_series(client, runs):
    user, finished, failed = runs
    client.force_login(user)
    response = _compare(client, *[r.pk for r in finished], failed.pk)
    assert response.status_code == 200
    charts = response.context["charts"]
    assert set(charts) == {"size", "latency", "fidelity", "tradeoff"}
    expected = [f"r{r.pk} {v}" for r in finished for v in VARIANTS]
    assert charts["size"]["data"][0]["x"] == expected
    assert [t["name"] for t in charts["latency"]["data"]] == ["1 thread", "2 threads"]
    assert all(t["x"] == expected for t in charts["latency"]["data"])
    assert charts["tradeoff"]["data"][0]["text"] == expected
    html = response.content.decode()
    for run in finished:
        row = html.split(f'<tr data-run="{run.pk}">')[1].split("</tr>")[0]
        assert f">{run.num_calib_samples}<" in row and f">{run.seed}<" in row and "near_tie v2" in row
        body = html.split(f'<tbody data-run="{run.pk}">')[1].split("</tbody>")[0]
        assert body.count("<tr") == 6, "PyTorch's reference row and five variants"
        assert body.count("data-latency") == 12, "1 and 2 threads per row"
        assert "50.0" in body, "int8's top-1 drop in points"


def test_a_failed_run_is_listed_with_its_status_but_not_charted(client, runs):
    user, finished, failed = runs
    client.force_login(user)
    html = _compare(client, finished[0].pk, failed.pk).content.decode()
    row = html.split(f'<tr data-run="{failed.pk}">')[1].split("</tr>")[0]
    assert "Failed" in row and "GridSample" in row and "not charted" in row
    assert f'<tbody data-run="{failed.pk}">' not in html
    assert f"r{failed.pk} " not in html


def test_the_compare_page_reads_neither_log_nor_config_in_bounded_queries(client, runs, django_assert_max_num_queries):
    user, finished, failed = runs
    ckpt, ds = finished[0].checkpoint, finished[0].dataset
    more = record_benchmark_runs(finished[0].report, ckpt, ds, user, settings=[(10 + i, i) for i in range(17)])
    client.force_login(user)
    # session + user, the runs
    with django_assert_max_num_queries(3) as few:
        _compare(client, finished[0].pk, failed.pk)
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = _compare(client, *[r.pk for r in finished + more], failed.pk)
    assert len(response.context["entries"]) == 20
    sql = next(q["sql"] for q in many.captured_queries if "conversions_conversionrun" in q["sql"])
    assert '"log"' not in sql and '"config"' not in sql
    assert "disagreements" not in sql
    run = response.context["entries"][0]["run"]
    assert {"report", "log", "config"} <= run.get_deferred_fields()


def test_ids_may_repeat_come_in_several_parameters_and_unknown_ones_are_named(client, runs):
    user, finished, failed = runs
    client.force_login(user)
    a, b, c = finished
    url = reverse("conversions:run_compare") + f"?ids={c.pk},{a.pk}&ids={a.pk}&ids=x7&ids=99999"
    response = client.get(url)
    assert [e["run"].pk for e in response.context["entries"]] == [a.pk, c.pk]
    notes = [str(m) for m in response.context["messages"]]
    assert any("'x7'" in n for n in notes) and any("#99999" in n for n in notes)


def test_more_than_twenty_runs_are_cut_with_a_note(client, runs):
    user, finished, failed = runs
    client.force_login(user)
    response = _compare(client, *range(1, 30))
    assert any("first 20" in str(m) for m in response.context["messages"])


def test_no_selection_explains_how_to_pick_runs(client, runs):
    user, *_ = runs
    client.force_login(user)
    response = client.get(reverse("conversions:run_compare"))
    assert response.status_code == 200 and "Compare selected" in response.content.decode()
    assert not response.context["charts"]


def test_history_rows_can_be_ticked_for_comparison(client, runs):
    user, finished, failed = runs
    client.force_login(user)
    html = client.get(reverse("conversions:history") + f"?selected={finished[1].pk}").content.decode()
    assert f'action="{reverse("conversions:run_compare")}"' in html and "Compare selected" in html
    for run in [*finished, failed]:
        assert f'name="ids" value="{run.pk}"' in html
    assert f'name="ids" value="{finished[1].pk}" aria-label="compare run {finished[1].pk}" checked' in html
    page = client.get(finished[0].get_absolute_url()).content.decode()
    assert f"?model=near_tie&amp;selected={finished[0].pk}" in page, "the run page links to a comparison"
