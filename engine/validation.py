"""Checks on what comes in from outside, shared by every edge."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def opaque_customer_id(value: str) -> str:
    """Customer ids end up in workflow ids and search attributes, which are never
    encrypted: refuse anything that looks like personal data."""
    if not _CUSTOMER_ID.match(value):
        raise ValueError("must be 1-64 letters, digits or _ . : - (an opaque id, not an email or phone)")
    if value.lstrip("+").replace("-", "").isdigit() and len(value) >= 7:
        raise ValueError("looks like a phone number; use an opaque customer id")
    return value


CustomerId = Annotated[str, AfterValidator(opaque_customer_id)]


def require_timezone(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-01-31T10:00:00Z")
    return value
