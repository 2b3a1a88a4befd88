"""The one wall clock of the core: aware UTC, so no result depends on the machine's zone."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
