"""Checks of single values: time zones, cron expressions, durations that must be positive,
link and media targets."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

from language.durations import DURATION_PATTERN
from language.shape import did_you_mean


def valid_timezone(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone, or None."""
    try:
        ZoneInfo(name)
        return None
    except (ValueError, KeyError, OSError):
        return f"unknown time zone '{name}'" + did_you_mean(name, _zones())


@lru_cache(maxsize=1)
def _zones() -> list[str]:
    return sorted(available_timezones())


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_NAMES = {3: "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec", 4: "sun|mon|tue|wed|thu|fri|sat"}


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a five-field cron expression, or None."""
    fields = cron.split()
    if len(fields) != 5:
        return (
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"e.g. '0 10 * * 5'; this one has {len(fields)}"
        )
    for i, (text, (what, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        names = _CRON_NAMES.get(i)
        atom = r"(\d+|" + names + ")" if names else r"(\d+)"
        part = rf"(\*|{atom}(-{atom})?)(/\d+)?"
        if not re.fullmatch(rf"{part}(,{part})*", text, re.IGNORECASE):
            return f"the {what} field '{text}' is not valid cron"
        for number in re.findall(r"\d+", re.sub(r"/\d+", "", text)):
            if not low <= int(number) <= high:
                return f"the {what} field '{text}' must stay within {low}-{high}"
    return None


def duration_problem(value: Any, *, zero_ok: bool = False) -> str | None:
    """Why a written duration is not positive, or None (shape errors are reported elsewhere)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = value  # a bare number, read as seconds
    elif isinstance(value, str) and re.fullmatch(DURATION_PATTERN, value.strip()):
        text = value.strip()
        nonzero = text[:-1].lstrip("-").strip("0") != ""  # no int(): the digits may be thousands long
        amount = (-1 if text.startswith("-") else 1) if nonzero else 0
    else:
        return None
    if amount < 0 or (amount == 0 and not zero_ok):
        return "must be a positive duration" if not zero_ok else "must not be negative"
    return None


URL_SCHEMES = ("http", "https")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a link() or media_url target, or None. Only absolute
    http(s) URLs with a host: no javascript:, data:, tel: or scheme-relative //host.
    The reason never repeats the URL (at run time it may come from customer data)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must be a URL without spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in URL_SCHEMES:
        written = f"'{parts.scheme}:'" if parts.scheme else ("a scheme-relative URL (//host)" if url.startswith("//")
                                                              else "a relative URL")
        return f"must be an http:// or https:// URL, not {written}, e.g. https://shop.example/sale"
    if not host:
        return "must name a host, e.g. https://shop.example/sale"
    return None
