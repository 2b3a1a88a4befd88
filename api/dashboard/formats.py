"""How the dashboard writes numbers: the templates' filters. A missing figure is a dash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "\u2013"  # an en dash


def count(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def percent(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None) -> str:
    """A difference of two rates in percentage points: 0.15 is +15.0 pp."""
    return DASH if value is None else f"{value * 100:+.1f} pp"


def signed_percent(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:+.0f}%"


def money(value: float | None, currency: str = "") -> str:
    return DASH if value is None else f"{value:,.2f} {currency}".strip()


def decimal(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


FILTERS: dict[str, Callable[..., Any]] = {"count": count, "percent": percent, "points": points,
                                          "signed_percent": signed_percent, "money": money, "decimal": decimal}
