"""Shared pytest fixtures; each area keeps its own in a module imported here."""

from benchmark_fixtures import (
    benchmark_run,  # noqa: F401  (a five-variant run of a small model)
)
from data_fixtures import (  # noqa: F401  (representative-data image trees)
    rd_flat,
    rd_imagefolder,
)
from portal_fixtures import (
    portal_report,  # noqa: F401  (a benchmark report for the run and compare pages)
)
