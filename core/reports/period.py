"""The period a report covers, from what a person types: dates are whole UTC days."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.customers.consent_export import parse_since


def parse_bound(text: str, *, end: bool = False) -> datetime:
    """An ISO date or a datetime with its zone. A date as the END of a period includes
    that whole day (``--until 2026-03-31`` ends at 2026-04-01 00:00 UTC)."""
    try:
        moment = parse_since(text)
        return moment + timedelta(days=1) if end and len(text.strip()) == 10 else moment
    except OverflowError:  # the first or last day of the calendar, in UTC
        raise ValueError(f"{text!r} is outside the dates a report can cover") from None
