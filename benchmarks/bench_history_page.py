"""Time to render the run history page with 20,000 runs, and the queries it takes, per URL.

    .venv/bin/python benchmarks/bench_history_page.py [--runs 20000] [--repeat 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bench_history_page.py

It creates a throw-away test database of the configured backend (``test_<name>``; SQLite by default),
fills it with runs spread over 3 users, 3 models and 2 datasets, then renders each URL through Django's
test client (full middleware, session, template) ``--repeat`` times and prints the median and p90.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent / "tests")
)  # tests/support: bulk runs
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantweb.settings")
os.environ.setdefault("DEBUG", "0")

URLS = [
    "/",
    "/?page=200",
    "/?status=failed&model=model1",
    "/?variant=int8&user=user2&dataset=data1",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from support.runs import bulk_create_runs

    from conversions.models import Checkpoint, ConversionRun, Dataset

    setup_test_environment(
        debug=False
    )  # as in production: no query logging outside the capture below
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        users = [
            get_user_model().objects.create_user(f"user{i}", password="pw")
            for i in range(3)
        ]
        ckpts = [
            Checkpoint.objects.create(
                name=f"model{i}", version=1, input_shape=[1, 3, 8, 8]
            )
            for i in range(3)
        ]
        datasets = [
            Dataset.objects.create(name=f"data{i}", source="server", path=f"/d{i}")
            for i in range(2)
        ]
        started = time.perf_counter()
        bulk_create_runs(args.runs, users, ckpts, datasets)
        fill = time.perf_counter() - started
        client = Client()
        client.force_login(users[0])
        print(
            f"database: {connection.vendor} ({connection.settings_dict['NAME']}), "
            f"{ConversionRun.objects.count():,} runs (created in {fill:.1f} s)"
        )
        print(f"{'url':45} {'queries':>7} {'median ms':>10} {'p90 ms':>8}")
        for url in URLS:
            client.get(url)  # warm caches and the connection
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(url).status_code == 200
            queries = list(
                ctx.captured_queries
            )  # read now: the next request resets the log
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            p90 = times[int(0.9 * (len(times) - 1))]
            print(
                f"{url:45} {len(queries):>7} {statistics.median(times):>10.1f} {p90:>8.1f}"
            )
            if os.environ.get("BENCH_SHOW_QUERIES"):
                for q in queries:
                    print(f"    {q['time']:>6} s  {q['sql'][:150]}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
