"""Erasure (GDPR art. 17): what is held about a customer, removed or made anonymous for
good, except what the law or the reports need; the customer's runs stopped; an audit row.

One transaction changes every table (``ERASED_TABLES`` says how each is handled, and a
test holds it to every table that has a customer or a phone column). What stays:

- the pseudonymous customer id with non-identifying numbers and statuses (orders, spend,
  points, tier, enrollments and their outcomes, message statuses, clicks, coupons,
  points entries), so aggregate reports keep their totals;
- the consent history's statuses, sources and times (proof of what was asked and when);
- the number's opt-out, under a keyed hash only (core/customers/pseudonyms.py): a number
  that comes back is still not texted, and the number itself is nowhere.

Then every active run is ended (outcome ``erased``) in the table, and its workflow is
terminated through ``RunStopper`` (reason ``erased``: nothing personal). Erasing again is
safe: it finds nothing personal left, stops whatever run is still running, and adds
another audit row. ``completed_at`` is set once the runs are stopped too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, update
from sqlmodel import Session, col, or_, select

from core.clock import utcnow
from core.customers import suppressions
from core.customers.records import UnknownCustomer, get_customer
from store.db import Database, session_scope
from store.tables import (
    AttributeChange,
    ConsentRecord,
    Coupon,
    Customer,
    Decision,
    Email,
    Enrollment,
    Erasure,
    Event,
    Link,
    Message,
    PointsEntry,
    Purchase,
    PurchaseItem,
    SegmentMembership,
)

__all__ = ["ERASED_TABLES", "ErasureReport", "RunStopper", "UnknownCustomer", "erase_customer"]

OUTCOME = "erased"  # the outcome of a run ended by erasure, and the reason given to Temporal
SOURCES = ("cli", "api")

# Every table that holds something of a customer, and what erasure does to it.
ERASED_TABLES = {
    "customers": "profile, phone, email, birthday, attributes, locale, zone, referral code emptied; "
                 "consent opted_out; orders, spend, points and tier kept",
    "consent_records": "kept: statuses, sources, times and disclosures (the program's text) are the "
                       "proof of consent; none holds the person's data",
    "events": "properties reduced to numbers and booleans (amounts stay; answers, texts, names go)",
    "enrollments": "kept (journey, outcome, conversion); active ones ended as erased, their runs terminated",
    "messages": "bodies, reply numbers and send zones emptied; status and counts kept; waiting ones skipped",
    "email_messages": "subjects and bodies (text and HTML) emptied; status kept; waiting ones skipped",
    "links": "the URL without its query or fragment (a template may have put personal data there)",
    "clicks": "kept: they hold only when, and why one was taken for a bot (no IP address, no user agent)",
    "decisions": "removed: they only serve a running run's replay, and the runs are over",
    "points_ledger": "kept: points and reasons, for the loyalty totals",
    "coupons": "kept: codes, series and redemptions, for the counts",
    "purchases": "kept: amounts and times, for revenue and order totals",
    "purchase_items": "removed: what the person bought says who they are (tastes, needs)",
    "segment_memberships": "removed",
    "attribute_changes": "values emptied (they are the customer's attributes)",
    "phone_suppressions": "the number's rows replaced by one opt-out under its keyed hash",
    "email_suppressions": "kept: keyed hashes of addresses only (no customer, no address); a bounced or "
                          "complaining address stays unemailed",
    "inbound_messages": "kept: provider ids and times only (no number, no text); they stop a retried "
                        "webhook from acting twice",
    "erasures": "the audit record itself: id, source, times and counts",
}


class RunStopper(Protocol):
    """Ends a running workflow for good (Temporal's terminate), if it runs."""

    async def stop(self, workflow_id: str, reason: str) -> bool:
        """True if a run was stopped, False if none was running."""
        ...


@dataclass
class ErasureReport:
    customer_id: str
    erasure_id: int
    requested_at: datetime
    completed_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    runs_not_stopped: list[str] = field(default_factory=list)  # workflow ids Temporal did not answer for


async def erase_customer(db: Database, runs: RunStopper, customer_id: str, *, source: str) -> ErasureReport:
    """Erase ``customer_id``; raises UnknownCustomer for an id never seen. A run that
    cannot be stopped now (Temporal unreachable) leaves ``completed_at`` unset and is
    listed: the person's data is gone all the same, and texts cannot go out (consent is
    opted out); erase again to stop it."""
    if source not in SOURCES:
        raise ValueError(f"unknown erasure source {source!r}")
    at = utcnow()
    erasure_id, counts, workflows = await asyncio.to_thread(_erase_rows, db, customer_id, source, at)
    stopped, failed = 0, []
    for workflow_id in workflows:
        try:
            stopped += await runs.stop(workflow_id, OUTCOME)
        except Exception:
            failed.append(workflow_id)
    counts["runs_stopped"] = stopped
    completed_at = None if failed else utcnow()
    await asyncio.to_thread(_complete, db, erasure_id, customer_id, source, counts, completed_at, again=stopped > 0)
    return ErasureReport(customer_id=customer_id, erasure_id=erasure_id, requested_at=at, completed_at=completed_at,
                         counts=counts, runs_not_stopped=failed)


def _erase_rows(db: Database, customer_id: str, source: str, at: datetime) -> tuple[int, dict[str, int], list[str]]:
    with session_scope(db) as session:
        customer = get_customer(session, customer_id, for_update=True)
        runs = session.exec(select(Enrollment).where(Enrollment.customer_id == customer_id)).all()
        # Runs this erasure ends, and those an earlier one ended whose workflow may still run.
        workflows = sorted({run.workflow_id for run in runs if run.status == "active" or run.outcome == OUTCOME})
        counts = _scrub(session, customer, source, at)
        audit = Erasure(customer_id=customer_id, source=source, requested_at=at, counts=counts)
        session.add(audit)
        session.flush()
        assert audit.id is not None
        return audit.id, counts, workflows


def _complete(db: Database, erasure_id: int, customer_id: str, source: str, counts: dict[str, int],
              completed_at: datetime | None, *, again: bool) -> None:
    with session_scope(db) as session:
        if again:  # a step a run took before it was stopped (a `set`, a reply) may have written since
            _scrub(session, get_customer(session, customer_id, for_update=True), source, utcnow())
        row = session.get(Erasure, erasure_id)
        assert row is not None
        row.counts, row.completed_at = dict(counts), completed_at
        session.add(row)


def _scrub(session: Session, customer: Customer, source: str, at: datetime) -> dict[str, int]:
    """Every table, in the caller's transaction: the rows covered per table (idempotent)."""
    phone, customer_id = customer.phone, customer.id
    run_ids = list(session.exec(select(Enrollment.id).where(Enrollment.customer_id == customer_id)).all())
    counts = {
        "customers": _customer(session, customer, at),
        "enrollments": _runs(session, customer_id, at),
        "messages": _messages(session, customer_id, phone, at),
        "email_messages": _emails(session, customer_id, at),
        "events": _events(session, customer_id),
        "links": _links(session, customer_id),
        "decisions": _decisions(session, run_ids),
        "segment_memberships": _removed(session, SegmentMembership, customer_id),
        "purchase_items": _removed(session, PurchaseItem, customer_id),
        "attribute_changes": _attribute_changes(session, customer_id),
        "phone_suppressions": suppressions.keep_only_hashed(session, phone, at, source=f"erasure:{source}")
                              if phone else 0,
    }
    # Kept as they are (see ERASED_TABLES): counted, so the audit says what remains.
    for table in (ConsentRecord, PointsEntry, Coupon, Purchase):
        counts[f"{table.__tablename__}_kept"] = len(session.exec(
            select(table).where(table.customer_id == customer_id)).all())
    return counts


def _customer(session: Session, customer: Customer, at: datetime) -> int:
    for name in ("phone", "first_name", "last_name", "email", "locale", "timezone", "birthday", "referral_code"):
        setattr(customer, name, None)
    customer.attributes = {}
    customer.phone_status = "erased"  # no number: nothing can be texted, and the row says why
    if customer.sms_consent != "opted_out":  # an erased person gets nothing, whatever comes later
        customer.sms_consent = "opted_out"
        session.add(ConsentRecord(customer_id=customer.id, status="opted_out", source="erasure", occurred_at=at,
                                  recorded_at=at))
    if customer.email_consent != "opted_out":
        customer.email_consent = "opted_out"
        session.add(ConsentRecord(customer_id=customer.id, status="opted_out", source="erasure", channel="email",
                                  occurred_at=at, recorded_at=at))
    customer.updated_at = at
    session.add(customer)
    return 1


def _runs(session: Session, customer_id: str, at: datetime) -> int:
    """The active runs end as erased (their workflows are terminated after the commit)."""
    ended = 0
    for run in session.exec(select(Enrollment).where(Enrollment.customer_id == customer_id,
                                                     Enrollment.status == "active")):
        run.status, run.outcome, run.ended_at, run.current_step = "ended", OUTCOME, at, None
        session.add(run)
        ended += 1
    return ended


def _messages(session: Session, customer_id: str, phone: str | None, at: datetime) -> int:
    # A text still waiting (deferred, or reserved and not handed over) never goes.
    session.execute(update(Message).where(col(Message.customer_id) == customer_id,
                                          col(Message.status).in_(("deferred", "reserved")))
                    .values(status="skipped", reason=OUTCOME, updated_at=at))
    whose = col(Message.customer_id) == customer_id
    if phone:  # replies to the number (a STOP before it was the customer's) name no customer
        whose = or_(whose, col(Message.reply_to) == phone)
    result = session.execute(update(Message).where(whose).values(body=None, reply_to=None, send_zone=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _emails(session: Session, customer_id: str, at: datetime) -> int:
    session.execute(update(Email).where(col(Email.customer_id) == customer_id,
                                        col(Email.status).in_(("deferred", "reserved")))
                    .values(status="skipped", reason=OUTCOME, updated_at=at))
    result = session.execute(update(Email).where(col(Email.customer_id) == customer_id)
                             .values(subject=None, body=None, html=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _plain_numbers(properties: dict[str, Any]) -> dict[str, Any]:
    """What an event's properties keep: numbers and booleans (an amount, a score), never
    text (a reply, a name, an address)."""
    return {key: value for key, value in properties.items() if isinstance(value, int | float | bool)}


def _events(session: Session, customer_id: str) -> int:
    covered = 0
    for event in session.exec(select(Event).where(Event.customer_id == customer_id)):
        kept = _plain_numbers(event.properties or {})
        if kept != event.properties:
            event.properties = kept
            session.add(event)
        covered += 1
    return covered


def _links(session: Session, customer_id: str) -> int:
    covered = 0
    for link in session.exec(select(Link).where(Link.customer_id == customer_id)):
        parts = urlsplit(link.url)
        link.url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        session.add(link)
        covered += 1
    return covered


def _decisions(session: Session, run_ids: list[str]) -> int:
    if not run_ids:
        return 0
    prefixes = [col(Decision.key).startswith(f"{run_id}:") for run_id in run_ids]
    result = session.execute(delete(Decision).where(or_(*prefixes)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _removed(session: Session, table: Any, customer_id: str) -> int:
    result = session.execute(delete(table).where(table.customer_id == customer_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _attribute_changes(session: Session, customer_id: str) -> int:
    result = session.execute(update(AttributeChange).where(col(AttributeChange.customer_id) == customer_id)
                             .values(values={}))
    return int(result.rowcount)  # type: ignore[attr-defined]

