"""What the portal benchmarks share: a throw-away database of N runs, and timing one URL (queries, median,
p90) through Django's test client with the full middleware."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/support: bulk runs
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantweb.settings")
os.environ.setdefault("DEBUG", "0")


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    return parser.parse_args()


@contextmanager
def runs_database(n_runs: int):
    """A test database of the configured backend (``test_<name>``; SQLite by default) holding ``n_runs``
    runs over 3 users, 3 models and 2 datasets; yields the users. Destroyed on exit."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import setup_test_environment
    from support.runs import bulk_create_runs

    from conversions.models import Checkpoint, ConversionRun, Dataset

    setup_test_environment(debug=False)  # as in production: no query logging outside the capture below
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        users = [get_user_model().objects.create_user(f"user{i}", password="pw") for i in range(3)]
        ckpts = [Checkpoint.objects.create(name=f"model{i}", version=1, input_shape=[1, 3, 8, 8]) for i in range(3)]
        datasets = [Dataset.objects.create(name=f"data{i}", source="server", path=f"/d{i}") for i in range(2)]
        started = time.perf_counter()
        bulk_create_runs(n_runs, users, ckpts, datasets)
        print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}), "
              f"{ConversionRun.objects.count():,} runs (created in {time.perf_counter() - started:.1f} s)")
        yield users
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def time_get(client, url: str, repeat: int, **headers) -> tuple[list[dict], float, float]:
    """GETs ``url`` once to warm up, once counting queries, then ``repeat`` times; returns the queries of one
    request and the median and p90 milliseconds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, headers=headers)  # warm caches and the connection
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    queries = list(ctx.captured_queries)  # read now: the next request resets the log
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        client.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return queries, statistics.median(times), times[int(0.9 * (len(times) - 1))]


def print_row(label: str, queries: list[dict], median: float, p90: float) -> None:
    print(f"{label:55} {len(queries):>7} {median:>10.1f} {p90:>8.1f}")
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for q in queries:
            print(f"    {q['time']:>6} s  {q['sql'][:150]}")
