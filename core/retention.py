"""Retention: personal data is kept as long as settings.yaml ``retention:`` says, then
anonymised or deleted, once a day (the ``retention-daily`` Temporal Schedule running the
Retention workflow, or ``journeys retention run``). See docs/operations.md "Retention".

Per kind, rows older than the period (``moment - period``, by the time named below):

- events (``received_at``): ``properties`` keep only NON_PERSONAL keys with plain
  values; the row stays (its id is the sender's idempotency key: a late repeat must stay
  a duplicate). Never touched: events not yet routed, the trigger event of a running
  enrollment (its run may still read ``trigger.properties``) and the ``sms_replied``
  events of a customer with a running enrollment (``answer()`` reads their text).
- messages (``created_at``): ``body`` and ``reply_to`` become NULL; status, reason,
  journey, step, segments, times and the rest stay, so counts per status, journey and
  step do not change.
- emails (email_messages, ``created_at``): ``subject``, ``body`` and ``html`` become
  NULL, as for texts; status, reason, journey, step and times stay.
- clicks (links, ``created_at``): the link's ``url`` is cut to its origin (scheme and
  host, plus ``#<code>`` to keep it unique per message) and the link answers 410 Gone;
  the click rows (time, bot or not) carry nothing personal and stay.
- decisions (``decided_at``): deleted. They are remembered answers of a run's steps,
  needed while the run may replay; rows whose enrollment is running, or that belong to
  no enrollment (the segment outbox), are never touched.

``inbound_messages`` is not a kind: its rows hold a provider's message id and times,
nothing personal, and deleting one would let a replay of that delivery (a captured,
signed webhook) act again, e.g. an old YES undoing a later STOP. The text of an
inbound message lives in its ``sms_replied`` event.

Messages and links of a running enrollment are never touched either. Each batch is
one transaction of at most ``batch_size`` rows in (time, key) order; anonymised rows
are marked (``anonymised_at``), deleted ones are gone, so a repeat finds nothing to do
and a run cut short is finished by the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, or_, update
from sqlmodel import Session, col, select
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from language.catalog import Catalog
from language.config import RetentionPeriods
from store.db import Database, session_scope
from store.tables import Decision, Email, Enrollment, Event, Link, Message
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.retention import KINDS, RETENTION_WORKFLOW, Cursor, RetentionInput

BATCH_SIZE = 1000
SCHEDULE_ID = "retention-daily"
SCHEDULE_CRON = "30 4 * * *"  # 04:30 in settings' default_timezone: after the loyalty day, at night
CATCHUP = timedelta(days=1)

# Event properties that say nothing about the person: amounts, products, engine facts.
NON_PERSONAL = frozenset({
    "amount", "total", "subtotal", "value", "revenue", "currency", "quantity", "items", "category", "sku",
    "product_id", "points", "balance", "expires_on", "tier", "from", "to", "direction", "segment", "source",
    "reason", "journey", "step", "code", "enrollment_id",
})  # fmt: skip
MAX_KEPT_TEXT = 64  # a longer text under a kept key is dropped all the same (free text, not a code)

ACTIONS = {"events": "anonymised", "messages": "anonymised", "clicks": "anonymised", "decisions": "deleted",
           "emails": "anonymised"}


def retention_schedule(catalog: Catalog) -> tuple[str, Schedule]:
    """The daily Temporal Schedule: the Retention workflow at 04:30 in settings'
    default_timezone; a run still going when the next is due is not doubled."""
    return SCHEDULE_ID, Schedule(
        action=ScheduleActionStartWorkflow(RETENTION_WORKFLOW, RetentionInput(), id=SCHEDULE_ID,
                                           task_queue=JOURNEY_TASK_QUEUE),
        spec=ScheduleSpec(cron_expressions=[SCHEDULE_CRON], time_zone_name=catalog.settings.default_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP),
    )


def retention_schedules(catalog: Catalog) -> dict[str, Schedule]:
    """``retention_schedule`` as a core.journeys.schedules ScheduleSource."""
    schedule_id, schedule = retention_schedule(catalog)
    return {schedule_id: schedule}


@dataclass
class Batch:
    kind: str
    changed: int  # rows anonymised or deleted (dry run: that would be)
    next_after: Cursor | None  # the last row looked at; None when no older row is left


@dataclass
class Report:
    moment: datetime
    dry_run: bool
    changed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kept_forever: list[str] = field(default_factory=list)  # kinds whose period is null


def cutoff(retention: RetentionPeriods, kind: str, moment: datetime) -> datetime | None:
    """Rows of ``kind`` older than this go; None: kept forever."""
    period: timedelta | None = getattr(retention, kind)
    return None if period is None else moment - period


def run_all(db: Database, retention: RetentionPeriods, moment: datetime, *, batch_size: int = BATCH_SIZE,
            dry_run: bool = False) -> Report:
    """Every kind, batch after batch, until done (what ``journeys retention run`` does)."""
    report = Report(moment=moment, dry_run=dry_run,
                    kept_forever=[kind for kind in KINDS if getattr(retention, kind) is None])
    for kind in KINDS:
        after: Cursor | None = None
        while True:
            batch = run_batch(db, retention, kind, moment, after=after, limit=batch_size, dry_run=dry_run)
            report.changed[kind] += batch.changed
            if batch.next_after is None:
                break
            after = batch.next_after
    return report


def run_for(db: Database, retention: RetentionPeriods, kind: str, moment: datetime, *, after: Cursor | None,
            batch_size: int, budget_seconds: float, on_batch: Callable[[Cursor], None] = lambda _: None) -> Batch:
    """Batches of ``kind`` from ``after`` until done or ``budget_seconds`` are spent (at
    least one batch); ``on_batch`` hears each cursor (the activity heartbeats it)."""
    started, changed = time.monotonic(), 0
    while True:
        batch = run_batch(db, retention, kind, moment, after=after, limit=batch_size)
        changed += batch.changed
        if batch.next_after is None or time.monotonic() - started >= budget_seconds:
            return Batch(kind, changed, batch.next_after)
        after = batch.next_after
        on_batch(after)


def run_batch(db: Database, retention: RetentionPeriods, kind: str, moment: datetime, *, after: Cursor | None = None,
              limit: int = BATCH_SIZE, dry_run: bool = False) -> Batch:
    """One batch of ``kind``: at most ``limit`` rows past the period after ``after``, in
    one transaction. Safe to repeat."""
    if kind not in KINDS:
        raise ValueError(f"unknown retention kind {kind!r}: one of {', '.join(KINDS)}")
    before = cutoff(retention, kind, moment)
    if before is None:
        return Batch(kind, 0, None)
    table = _TABLES[kind]
    with session_scope(db) as session:
        query = select(table.row).where(table.at < before).order_by(table.at, table.key).limit(limit)
        if table.marked is not None:
            query = query.where(table.marked.is_(None))
        if kind == "events":
            query = query.where(col(Event.routed_at).is_not(None))
        if after is not None:
            # Spelt out (not a row value): PostgreSQL then reads the (anonymised_at, time, key) index.
            query = query.where(or_(table.at > after.at, and_(table.at == after.at, table.key > after.key)))
        rows = list(session.exec(query).all())
        if not rows:
            return Batch(kind, 0, None)
        last = rows[-1]
        cursor = Cursor(at=getattr(last, table.at.key), key=getattr(last, table.key.key))
        chosen = table.choose(session, rows)
        if chosen and not dry_run:
            table.apply(session, chosen, moment)
        return Batch(kind, len(chosen), cursor if len(rows) == limit else None)


# --- per kind: which rows of a batch may go, and what is done to them -------------------------------


def _active(session: Session, enrollment_ids: Iterable[str | None]) -> set[str]:
    ids = {i for i in enrollment_ids if i}
    if not ids:
        return set()
    return set(session.exec(select(Enrollment.id).where(col(Enrollment.id).in_(ids),
                                                        Enrollment.status == "active")).all())


def _choose_events(session: Session, rows: list[Any]) -> list[Any]:
    triggers = set(session.exec(select(Enrollment.trigger_event_id).where(
        col(Enrollment.trigger_event_id).in_([row.id for row in rows]), Enrollment.status == "active")).all())
    replies = {row.customer_id for row in rows if row.type == "sms_replied"}
    answering = set(session.exec(select(Enrollment.customer_id).where(
        col(Enrollment.customer_id).in_(replies), Enrollment.status == "active")).all()) if replies else set()
    return [row for row in rows if row.id not in triggers
            and not (row.type == "sms_replied" and row.customer_id in answering)]


def non_personal(properties: dict[str, Any]) -> dict[str, Any]:
    """What an event keeps: NON_PERSONAL keys with a number, a boolean or a short text."""
    def plain(value: Any) -> bool:
        return value is None or isinstance(value, bool | int | float) or (
            isinstance(value, str) and len(value) <= MAX_KEPT_TEXT)

    return {key: value for key, value in properties.items() if key in NON_PERSONAL and plain(value)}


def _anonymise_events(session: Session, rows: list[Any], moment: datetime) -> None:
    for row in rows:
        row.properties = non_personal(row.properties or {})
        row.anonymised_at = moment
        session.add(row)


def _choose_of_ended_runs(session: Session, rows: list[Any]) -> list[Any]:
    running = _active(session, (row.enrollment_id for row in rows))
    return [row for row in rows if row.enrollment_id not in running]


def _anonymise_messages(session: Session, rows: list[Any], moment: datetime) -> None:
    session.execute(update(Message).where(col(Message.id).in_([row.id for row in rows]))
                    .values(body=None, reply_to=None, anonymised_at=moment))


def _anonymise_emails(session: Session, rows: list[Any], moment: datetime) -> None:
    session.execute(update(Email).where(col(Email.id).in_([row.id for row in rows]))
                    .values(subject=None, body=None, html=None, anonymised_at=moment))


def origin_only(url: str, code: str) -> str:
    """``https://shop.example/cart/A?c=123`` -> ``https://shop.example#<code>``."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.hostname}" if parts.scheme and parts.hostname else ""
    return f"{origin}#{code}"


def _anonymise_links(session: Session, rows: list[Any], moment: datetime) -> None:
    for row in rows:
        row.url = origin_only(row.url, row.code)
        row.anonymised_at = moment
        session.add(row)


def _run_of(decision_key: str) -> str:
    """The enrollment a decision belongs to: ``<enrollment>:<step>...`` or
    ``segments:<enrollment>:<step>`` (an update_segments step)."""
    key = decision_key.removeprefix("segments:")
    return key.split(":", 1)[0]


def _choose_decisions(session: Session, rows: list[Any]) -> list[Any]:
    runs = {_run_of(row.key) for row in rows}
    ended = set(session.exec(select(Enrollment.id).where(col(Enrollment.id).in_(runs),
                                                         Enrollment.status != "active")).all())
    return [row for row in rows if _run_of(row.key) in ended]


def _delete_decisions(session: Session, rows: list[Any], moment: datetime) -> None:
    session.execute(delete(Decision).where(col(Decision.key).in_([row.key for row in rows])))


@dataclass(frozen=True)
class _Table:
    row: Any
    at: Any  # the time column the period counts from
    key: Any  # the primary key: with ``at``, the batches' order
    marked: Any  # anonymised_at, for kinds that keep their rows
    choose: Callable[[Session, list[Any]], list[Any]]
    apply: Callable[[Session, list[Any], datetime], None]


_TABLES = {
    "events": _Table(Event, col(Event.received_at), col(Event.id), col(Event.anonymised_at),
                     _choose_events, _anonymise_events),
    "messages": _Table(Message, col(Message.created_at), col(Message.id), col(Message.anonymised_at),
                       _choose_of_ended_runs, _anonymise_messages),
    "clicks": _Table(Link, col(Link.created_at), col(Link.code), col(Link.anonymised_at),
                     _choose_of_ended_runs, _anonymise_links),
    "decisions": _Table(Decision, col(Decision.decided_at), col(Decision.key), None,
                        _choose_decisions, _delete_decisions),
    "emails": _Table(Email, col(Email.created_at), col(Email.id), col(Email.anonymised_at),
                     _choose_of_ended_runs, _anonymise_emails),
}
