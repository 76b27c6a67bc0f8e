"""Marks failed the runs whose worker died: once (from cron), or every few seconds (``--every``, the
reaper process the README's production command and ``start_portal.sh`` run), so a dead run is failed with
its reason without anyone loading a page."""

import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from redis.exceptions import RedisError

from conversions.reaper import reap_dead_runs


class Command(BaseCommand):
    help = "Mark failed every queued or running run whose worker or RQ job is gone, with the reason."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0,
                            help="keep running, reaping every this many seconds (0: once and exit)")  # fmt: skip

    def handle(self, *args, every: float = 0, **options):
        if not every:
            self._reap_once()
            return
        while True:
            try:
                self._reap_once(quiet=True)
            except (DatabaseError, RedisError) as err:  # a restart of either is survived, not fatal
                self.stderr.write(f"reaper: skipped a round ({err})")
                close_old_connections()
            time.sleep(every)

    def _reap_once(self, quiet: bool = False) -> None:
        reaped = reap_dead_runs()
        for run in reaped:
            self.stdout.write(f"run {run.pk}: {run.error}")
        if reaped or not quiet:
            self.stdout.write(f"{len(reaped)} run(s) marked failed")
        self.stdout.flush()
