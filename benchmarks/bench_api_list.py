"""The API's run list next to the history page, with 20,000 runs: queries and time per URL, side by side.

    .venv/bin/python benchmarks/bench_api_list.py [--runs 20000] [--repeat 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bench_api_list.py

Same throw-away database as ``bench_history_page.py``; the API is called through Django's test client with
a real token (``Authorization: Bearer``), the page with a signed-in session, alternately per URL.
"""

from __future__ import annotations

from portal_bench import parse_args, print_row, runs_database, time_get

FILTERS = ["", "page=200", "status=failed&model=model1", "variant=int8&user=user2&dataset=data1"]


def main() -> None:
    args = parse_args(__doc__)

    with runs_database(args.runs) as users:
        from django.test import Client

        from conversions.models import ApiToken

        page_client, api_client = Client(), Client()
        page_client.force_login(users[0])
        token = ApiToken.issue(users[0], name="benchmark")[1]
        print(f"{'url':55} {'queries':>7} {'median ms':>10} {'p90 ms':>8}")
        for query in FILTERS:  # (4 x 22 API requests stay under the default rate limit of 600 a minute)
            api_url = f"/api/v1/runs/?{query}"
            print_row(api_url, *time_get(api_client, api_url, args.repeat, Authorization=f"Bearer {token}"))
            print_row(f"/?{query}", *time_get(page_client, f"/?{query}", args.repeat))


if __name__ == "__main__":
    main()
