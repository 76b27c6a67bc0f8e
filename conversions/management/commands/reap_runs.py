"""Marks failed the runs whose worker died (run it from cron, or let the portal pages do it as they load)."""

from django.core.management.base import BaseCommand

from conversions.reaper import reap_dead_runs


class Command(BaseCommand):
    help = "Mark failed every queued or running run whose worker or RQ job is gone, with the reason."

    def handle(self, *args, **options):
        reaped = reap_dead_runs()
        for run in reaped:
            self.stdout.write(f"run {run.pk}: {run.error}")
        self.stdout.write(f"{len(reaped)} run(s) marked failed")
