"""The uncertainty shown beside an agreement: the Wilson score interval."""

from __future__ import annotations

import pytest

from conversions.engine.verify.metrics import wilson_interval


def test_wilson_interval_matches_the_closed_form_and_stays_inside_zero_and_one():
    # 6 of 12 at 95%: centre 0.5, half-width 1.96 * sqrt(0.25/12 + 1.96^2/576) / (1 + 1.96^2/12) = 0.2462.
    low, high = wilson_interval(6, 12)
    assert (low, high) == pytest.approx((0.2538, 0.7462), abs=5e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(10 / (10 + 1.959964**2), abs=1e-4)  # the n-of-n closed form
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(3, 0) is None


def test_a_wider_confidence_gives_a_wider_interval_and_more_samples_a_narrower_one():
    w95 = wilson_interval(30, 32)
    w99 = wilson_interval(30, 32, confidence=0.99)
    assert w99[0] < w95[0] and w99[1] > w95[1]
    many = wilson_interval(300, 320)
    assert many[1] - many[0] < w95[1] - w95[0]
