"""Shared pytest fixtures; each area keeps its own in a module of ``support/`` imported here."""

from support.benchmark_fixtures import (
    benchmark_run,  # noqa: F401  (a five-variant run of a small model)
)
from support.data_fixtures import (  # noqa: F401  (representative-data image trees)
    rd_flat,
    rd_imagefolder,
)
from support.portal_fixtures import (  # noqa: F401
    ana,  # a signed-in team member without staff rights
    media,  # MEDIA_ROOT in the test's own folder
    portal_report,  # a benchmark report for the run and compare pages
)
