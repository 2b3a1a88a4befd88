"""The consent audit export: every consent change with its evidence, oldest first,
read in pages (keyset on occurred_at, id) so any number of records streams in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import and_, col, or_, select

from core.customers.export import plain
from store.db import session_scope
from store.tables import ConsentRecord

FIELDS = ("customer_id", "status", "source", "disclosure", "occurred_at", "recorded_at")
PAGE = 500


def parse_since(text: str) -> datetime:
    """An ISO date (00:00 UTC that day) or an ISO datetime with its zone."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (2026-01-31) or datetime (2026-01-31T09:00:00+00:00)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add one, e.g. {value}+00:00 or {value}Z")
    return moment.astimezone(UTC)


def consent_changes(db: Any, *, since: datetime | None = None, page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Each consent record (occurred at or after ``since``) as a JSON-ready row, oldest first."""
    after: tuple[datetime, int] | None = None
    while True:
        query = select(ConsentRecord)
        if since is not None:
            query = query.where(col(ConsentRecord.occurred_at) >= since)
        if after is not None:
            at, last_id = after
            query = query.where(or_(col(ConsentRecord.occurred_at) > at,
                                    and_(col(ConsentRecord.occurred_at) == at, col(ConsentRecord.id) > last_id)))
        with session_scope(db, readonly=True) as session:
            rows = session.exec(query.order_by(col(ConsentRecord.occurred_at), col(ConsentRecord.id))
                                .limit(page)).all()
        for row in rows:
            yield {name: plain(getattr(row, name)) for name in FIELDS}
        if len(rows) < page:
            return
        assert rows[-1].id is not None
        after = (rows[-1].occurred_at, rows[-1].id)
