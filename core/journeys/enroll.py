"""Entering named customers into a journey by hand (the API's enrollments, `journeys
enroll`): each through ``Starter.enter`` with a fresh ``manual:`` occasion, so a repeat
while the first run is active is refused as "already in this journey" (reentry rules),
never a second entry. Unknown customers are reported, not created."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from core.customers.records import missing_customers
from core.journeys.enrollment import Starter
from core.validation import opaque_customer_id
from language.catalog import PinnedJourney
from store.db import Database, session_scope
from store.tables import SegmentMembership
from workflows.io import workflow_id

UNKNOWN_CUSTOMER = "unknown customer"
PAGE = 500  # customers per page: a big segment or file is entered in bounded memory
MAX_ID_FILE = 20 * 1024 * 1024  # bytes of a --csv file (over a million ids)


@dataclass(frozen=True)
class Enrolled:
    customer_id: str
    entered: bool
    reason: str | None = None
    run_id: str | None = None  # the workflow id of the run it entered


def manual_occasion() -> str:
    return f"manual:{uuid.uuid4().hex}"


def _missing(starter: Starter, customer_ids: list[str]) -> set[str]:
    with session_scope(starter.db, readonly=True) as session:
        return missing_customers(session, customer_ids)


async def enroll_customers(starter: Starter, pinned: PinnedJourney, customer_ids: Iterable[str]) -> list[Enrolled]:
    """One answer per id, in order (ids must already be checked with opaque_customer_id)."""
    ids = list(customer_ids)
    missing = await asyncio.to_thread(_missing, starter, ids)
    results = []
    for customer_id in ids:
        if customer_id in missing:
            results.append(Enrolled(customer_id, False, UNKNOWN_CUSTOMER))
            continue
        entry = await starter.enter(pinned, customer_id, occasion=manual_occasion(), check_trigger=False)
        results.append(Enrolled(customer_id, True, None, entry.workflow_id or workflow_id(pinned.journey.id,
                                                                                          customer_id))
                       if entry.started else Enrolled(customer_id, False, entry.reason or "not entered"))
    return results


def segment_pages(db: Database, segment: str, size: int = PAGE) -> Iterator[list[str]]:
    """The segment's current members, a page at a time (keyset by customer id)."""
    after = ""
    while True:
        with session_scope(db, readonly=True) as session:
            page = list(session.exec(select(SegmentMembership.customer_id)
                                     .where(SegmentMembership.segment == segment,
                                            col(SegmentMembership.customer_id) > after)
                                     .order_by(col(SegmentMembership.customer_id)).limit(size)).all())
        if not page:
            return
        yield page
        after = page[-1]


class IdFileError(ValueError):
    """A --csv file that cannot be used; ``problems`` name each bad line."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def read_id_file(path: Path, max_bytes: int = MAX_ID_FILE) -> list[str]:
    """Customer ids from a CSV with a ``customer_id`` column, or one id per line. Every
    line is checked before anything is entered: a bad one is named with its line number."""
    size = path.stat().st_size
    if size > max_bytes:
        raise IdFileError(f"{path} is {size:,} bytes, more than {max_bytes:,}: split it")
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip() for cell in rows[0]] if rows else []
    column = header.index("customer_id") if "customer_id" in header else None
    start = 1 if column is not None else 0
    ids, problems, seen = [], [], set()
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if column is None and len(row) > 1:
            problems.append(f"line {number}: one id per line, or a customer_id column")
            continue
        value = (row[column] if column is not None and column < len(row) else row[0] if column is None else "")
        value = value.strip()
        try:
            opaque_customer_id(value)
        except ValueError as err:
            problems.append(f"line {number}: the customer id {err}")  # not echoed: it may be personal data
            continue
        if value not in seen:
            seen.add(value)
            ids.append(value)
    if problems:
        raise IdFileError(f"{path}: {len(problems)} bad line(s); nothing was entered", problems)
    return ids
