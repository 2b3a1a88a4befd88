"""The split statistics against textbook values and an independent computation
(Python's statistics.NormalDist, not scipy)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from core.reports import stats

Z = NormalDist().inv_cdf(0.975)


def test_wilson_interval_matches_newcombe_1998() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857-872, table I: 81/263 -> 0.2553 to 0.3662.
    interval = stats.wilson(81, 263)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2553, 0.3662)
    # ... and 15/148 -> 0.0624 to 0.1605.
    interval = stats.wilson(15, 148)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0624, 0.1605)


def test_difference_interval_matches_newcombe_1998() -> None:
    # Newcombe (1998b), Statistics in Medicine 17:873-890, example (a): 56/70 vs 48/80,
    # method 10 (hybrid score): +0.0524 to +0.3339.
    interval = stats.newcombe(56, 70, 48, 80)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)
    # Example (d), 5/56 vs 0/29: -0.0381 to +0.1926 (zero events: where Wald fails).
    interval = stats.newcombe(5, 56, 0, 29)
    assert (round(interval.low, 4), round(interval.high, 4)) == (-0.0381, 0.1926)


def test_z_test_p_value_by_hand() -> None:
    pooled = (56 + 48) / 150
    z = (56 / 70 - 48 / 80) / math.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    expected = 2 * (1 - NormalDist().cdf(z))
    assert stats.z_test(56, 70, 48, 80) == pytest.approx(expected, rel=1e-9)
    assert stats.p_value(56, 70, 48, 80) == (pytest.approx(expected, rel=1e-9), "z")


def test_small_counts_use_fishers_exact_test() -> None:
    # Fisher's tea tasting (3 of 4 right in each direction): two-sided p = 34/70.
    p, test = stats.p_value(3, 4, 1, 4)
    assert test == "fisher" and p == pytest.approx(34 / 70)


def test_relative_lift_interval_is_the_log_risk_ratio_one() -> None:
    ratio = (30 / 100) / (20 / 100)
    se = math.sqrt(1 / 30 - 1 / 100 + 1 / 20 - 1 / 100)
    interval = stats.risk_ratio_interval(30, 100, 20, 100)
    assert interval is not None
    assert interval.low == pytest.approx(ratio * math.exp(-Z * se) - 1)
    assert interval.high == pytest.approx(ratio * math.exp(Z * se) - 1)
    assert stats.risk_ratio_interval(3, 10, 0, 10) is None


def test_required_sample_size_by_fleiss() -> None:
    p1, p2 = 0.15, 0.10
    mean = (p1 + p2) / 2
    root = Z * math.sqrt(2 * mean * (1 - mean)) + NormalDist().inv_cdf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    assert stats.required_per_arm(p1, p2) == math.ceil(root**2 / (p1 - p2) ** 2) == 686
    assert stats.required_per_arm(0.2, 0.2) is None


def test_lift_puts_it_together() -> None:
    found = stats.lift(56, 70, 48, 80)
    assert found is not None
    assert found.absolute == pytest.approx(0.2)
    assert found.relative == pytest.approx((56 / 70) / (48 / 80) - 1)
    assert (round(found.absolute_interval.low, 4), round(found.absolute_interval.high, 4)) == (0.0524, 0.3339)
    assert found.test == "z" and found.p_value < 0.05
    assert stats.lift(1, 0, 1, 10) is None
