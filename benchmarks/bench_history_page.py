"""Time to render the run history page with 20,000 runs, and the queries it takes, per URL.

    .venv/bin/python benchmarks/bench_history_page.py [--runs 20000] [--repeat 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bench_history_page.py

It creates a throw-away test database of the configured backend (``test_<name>``; SQLite by default),
fills it with runs spread over 3 users, 3 models and 2 datasets, then renders each URL through Django's
test client (full middleware, session, template) ``--repeat`` times and prints the median and p90.
"""

from __future__ import annotations

from portal_bench import parse_args, print_row, runs_database, time_get

URLS = ["/", "/?page=200", "/?status=failed&model=model1", "/?variant=int8&user=user2&dataset=data1"]


def main() -> None:
    args = parse_args(__doc__)

    with runs_database(args.runs) as users:
        from django.test import Client

        client = Client()
        client.force_login(users[0])
        print(f"{'url':55} {'queries':>7} {'median ms':>10} {'p90 ms':>8}")
        for url in URLS:
            print_row(url, *time_get(client, url, args.repeat))


if __name__ == "__main__":
    main()
