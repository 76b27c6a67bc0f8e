"""A real benchmark report for the portal's run and compare pages (one conversion per test session)."""

from __future__ import annotations

import pytest

from support.runs import benchmark_report


@pytest.fixture(scope="session")
def portal_report(tmp_path_factory) -> dict:
    """Five variants at 1 and 2 threads, labeled accuracy, and int8 wrong on every green image."""
    return benchmark_report(tmp_path_factory.mktemp("portal-report"))
