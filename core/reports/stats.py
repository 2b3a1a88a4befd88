"""The statistics of a split: how a variant's conversion rate compares with its holdout's.

Chosen for small shops, whose holdouts are small (see docs/reports.md):

- the difference of two proportions with Newcombe's hybrid score interval (his method
  10, from two Wilson intervals): it stays inside [-1, 1] and keeps its 95% coverage
  at small counts and at rates near 0, where the normal ("Wald") interval does not;
- the relative lift (ratio - 1) with the log risk-ratio (Katz) interval;
- a two-sided p-value: the pooled two-proportion z-test, or Fisher's exact test when an
  expected cell count is under 5 (where the z-test's normal approximation fails);
- the sample size per arm to detect the observed difference with 80% power at a
  two-sided alpha of 0.05 (Fleiss's formula, no continuity correction).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field
from scipy.stats import fisher_exact, norm

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.80
FISHER_BELOW = 5  # expected count under which the exact test replaces the z-test


class Interval(BaseModel):
    low: float
    high: float


class Lift(BaseModel):
    """A variant against the holdout, on conversion rate."""

    absolute: float = Field(description="Variant rate minus holdout rate (0.02 = 2 percentage points)")
    absolute_interval: Interval = Field(description="95% interval of the difference (Newcombe's hybrid score)")
    relative: float | None = Field(description="Variant rate / holdout rate - 1; None when the holdout has no "
                                               "conversion")
    relative_interval: Interval | None = Field(description="95% interval of the relative lift (log risk ratio)")
    p_value: float = Field(description="Two-sided: how often a difference this large shows with no real effect")
    test: str = Field(description="z (pooled two-proportion z-test) or fisher (exact, for small counts)")
    required_per_arm: int | None = Field(description="Customers each arm needs to detect this difference with 80% "
                                                     "power at alpha 0.05; None when there is no difference")


def _z(confidence: float = CONFIDENCE) -> float:
    return float(norm.ppf(1 - (1 - confidence) / 2))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson's score interval for one proportion."""
    if n <= 0:
        return Interval(low=0.0, high=1.0)
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(low=max(0.0, centre - half), high=min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE) -> Interval:
    """Newcombe's hybrid score interval of p1 - p2."""
    p1, p2 = x1 / n1, x2 / n2
    w1, w2 = wilson(x1, n1, confidence), wilson(x2, n2, confidence)
    d = p1 - p2
    return Interval(low=d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2),
                    high=d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2))


def risk_ratio_interval(x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE) -> Interval | None:
    """The interval of p1/p2 - 1 from the log risk ratio; None when either arm has no conversion."""
    if x1 == 0 or x2 == 0:
        return None
    ratio = (x1 / n1) / (x2 / n2)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    z = _z(confidence)
    return Interval(low=ratio * math.exp(-z * se) - 1, high=ratio * math.exp(z * se) - 1)


def z_test(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test."""
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * norm.sf(abs(z)))


def small_counts(x1: int, n1: int, x2: int, n2: int) -> bool:
    """Whether any expected cell of the 2x2 table is under FISHER_BELOW."""
    pooled = (x1 + x2) / (n1 + n2)
    return min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)) < FISHER_BELOW


def p_value(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str]:
    if small_counts(x1, n1, x2, n2):
        _, p = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
        return min(1.0, float(p)), "fisher"
    return z_test(x1, n1, x2, n2), "z"


def required_per_arm(p1: float, p2: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Fleiss: customers per arm to detect p1 vs p2 (two-sided alpha, given power)."""
    if p1 == p2:
        return None
    z_alpha, z_beta = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    mean = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (p1 - p2) ** 2)


def lift(x1: int, n1: int, x2: int, n2: int) -> Lift | None:
    """Variant (x1 of n1 converted) against holdout (x2 of n2); None when an arm is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    p, test = p_value(x1, n1, x2, n2)
    return Lift(absolute=p1 - p2, absolute_interval=newcombe(x1, n1, x2, n2),
                relative=(p1 / p2 - 1) if x2 else None,
                relative_interval=risk_ratio_interval(x1, n1, x2, n2),
                p_value=p, test=test, required_per_arm=required_per_arm(p1, p2))
