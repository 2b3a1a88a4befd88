"""Immediate membership: when an event changes a customer's data, the rule segments that
read what changed are re-evaluated for that one customer at once, in the event path, so
``segment_entered`` / ``segment_exited`` start and stop journeys within the request.

* What an event changes (``EVENT_CHANGES``) is matched with what a rule reads
  (``language.segment_sql.rule_reads``); a rule reading a segment that may have moved
  (``in_segment``) is re-evaluated after it, in the refresh's order.
* The answer is the refresh's: the same compiled SQL, restricted to the customer id, as
  of the end of the second the change happened in (``end_of_second``).
* Exactly once: the membership row's primary key decides. A change is made with
  ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` / ``DELETE ... RETURNING`` and announced
  only if this transaction really made it, through an outbox row of the refresh's kind
  (``segment-outbox:<token>:...``, token from the event id) written in the same
  transaction; a concurrent refresh that finds the change made announces nothing, and
  the refresh re-checks the rule when it applies (core.segments.refresh._apply).
  A retried event (same id) routes what its first attempt left, with the same ids.
* The clock alone (days since, sliding windows) moves nobody here: the scheduled
  refresh does that, and is the safety net for anything missed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, select
from sqlmodel import Session

from core.clock import utcnow
from core.event import EventIn, EventPath
from core.segments.refresh import (
    MEMBERSHIPS,
    OUTBOX,
    _events_of,
    _forget_outbox,
    _insert,
    _outbox_rows,
    outbox_order,
    rule_segment_order,
)
from language.catalog import Catalog
from language.config import RuleSegment
from language.segment_sql import CUSTOMERS, compile_rule, rule_reads, rule_segments
from store.db import Database, session_scope
from store.tables import Decision

# Event type -> the customer data it changes (names as in language.segment_sql.rule_reads).
EVENT_CHANGES: dict[str, frozenset[str]] = {
    "purchase": frozenset({"purchases", "loyalty"}),  # orders, spend, items, categories; points and tier
    "link_clicked": frozenset({"clicks"}),
    "sms_replied": frozenset({"replies"}),
    "opted_in": frozenset({"consent"}),
    "opted_out": frozenset({"consent"}),
    "tier_changed": frozenset({"loyalty"}),
    "referral_converted": frozenset({"loyalty"}),
    "segment_entered": frozenset({"segments"}),  # a manual segment changed (update_segments, the API)
    "segment_exited": frozenset({"segments"}),
}
PROFILE_CHANGE = frozenset({"profile"})  # a profile update (core.intake.profiles): no event of its own
SOURCE = "segments"


def changes_of(event: EventIn, source: str) -> frozenset[str]:
    """What ``event`` changes. Segment events the refresh or this module announced change
    nothing more: both already evaluate the rules reading segments, in order."""
    if source == SOURCE:
        return frozenset()
    return EVENT_CHANGES.get(event.type, frozenset())


_PLANS: dict[tuple[int, frozenset[str]], tuple[Catalog, tuple[tuple[str, str], ...]]] = {}


def _plan(catalog: Catalog, changed: frozenset[str]) -> tuple[tuple[str, str], ...]:
    known = _PLANS.get((id(catalog), changed))
    if known is None or known[0] is not catalog:
        if len(_PLANS) > 256:  # catalogs come and go (a reload, tests): keep the memo small
            _PLANS.clear()
        known = _PLANS[(id(catalog), changed)] = (catalog, _make_plan(catalog, changed))
    return known[1]


def _make_plan(catalog: Catalog, changed: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """(segment, rule) of the rule segments to re-evaluate when ``changed`` changes, in
    the refresh's order: those reading it, then those reading a segment among them."""
    rules = {n: s.rule for n, s in catalog.segments.segments.items() if isinstance(s, RuleSegment)}
    chosen: list[tuple[str, str]] = []
    moved: set[str] = set()
    for name in rule_segment_order(catalog):
        read = rule_segments(rules[name])
        if rule_reads(rules[name]) & changed or (read & moved) or ("*" in read and moved):
            chosen.append((name, rules[name]))
            moved.add(name)
    return tuple(chosen)


def affected(catalog: Catalog, changed: Iterable[str]) -> list[str]:
    """The rule segments re-evaluated when ``changed`` changes (for docs and tests)."""
    return [name for name, _ in _plan(catalog, frozenset(changed))]


def end_of_second(at: datetime) -> datetime:
    """Rules are evaluated as of the end of the second the change happened in: the events of
    one second share one compiled query (and nothing of that second is left out)."""
    return at if not at.microsecond else at.replace(microsecond=0) + timedelta(seconds=1)


def token_of(cause: str) -> str:
    return hashlib.sha256(f"immediate:{cause}".encode()).hexdigest()[:16]


def may_move(catalog: Catalog, changed: frozenset[str]) -> bool:
    """Whether ``reevaluate`` has any rule to look at for ``changed``."""
    return bool(changed) and catalog.segments.immediate and bool(_plan(catalog, changed))


async def reevaluate(router: EventPath, customer_id: str, changed: frozenset[str], *, cause: str,
                     at: datetime | None = None) -> int:
    """Re-evaluate for ``customer_id`` the rule segments reading ``changed`` and announce
    each real change; ``cause`` (the event id) names the change for retries. Returns how
    many segment events were routed."""
    catalog = router.catalog
    if not changed or not catalog.segments.immediate:
        return 0
    plan = _plan(catalog, changed)
    if not plan:
        return 0
    token = token_of(cause)
    await asyncio.to_thread(_update, router.db, token, customer_id, plan, end_of_second(at or utcnow()))
    return await route_outbox(router, token)


def _update(db: Database, token: str, customer_id: str, plan: tuple[tuple[str, str], ...], at: datetime) -> None:
    """Bring the customer's memberships in ``plan`` in line with the rules, announcing each change."""
    with session_scope(db, readonly=True) as session:  # most events move nobody: find out without the write lock
        if not _moves(session, customer_id, plan, at):
            return
    with session_scope(db) as session:
        found = select(CUSTOMERS.c.phone_status).where(CUSTOMERS.c.id == customer_id)
        if session.get_bind().dialect.name == "postgresql":
            found = found.with_for_update()  # one re-evaluation of a customer at a time
        if session.execute(found).scalar_one_or_none() is None:
            return
        independent = [(n, r) for n, r in plan if not rule_segments(r)]
        matches = _matches(session, customer_id, independent, at)
        current = _memberships(session, customer_id, plan)
        for name, rule in plan:
            if name not in matches:  # reads segments: after those it reads have moved (flushed below)
                matches.update(_matches(session, customer_id, [(name, rule)], at))
            member = MEMBERSHIPS.c.customer_id == customer_id, MEMBERSHIPS.c.segment == name
            changed = None
            if matches[name] and name not in current:
                changed = session.execute(
                    _insert(session)(MEMBERSHIPS).values(customer_id=customer_id, segment=name, entered_at=at)
                    .on_conflict_do_nothing().returning(MEMBERSHIPS.c.customer_id)).first()
            elif not matches[name] and name in current:
                changed = session.execute(delete(MEMBERSHIPS).where(*member)
                                          .returning(MEMBERSHIPS.c.customer_id)).first()
            if changed:  # this transaction made the change: it announces it (a concurrent one found it made)
                _announce(session, token, name, "in" if matches[name] else "out", customer_id, at)
                session.flush()


def _matches(session: Session, customer_id: str, rules: list[tuple[str, str]], at: datetime) -> dict[str, bool]:
    """Whether the customer matches each rule, in one query (erased customers match none)."""
    if not rules:
        return {}
    row = session.execute(_statement(tuple(rule for _, rule in rules), at), {"customer_id": customer_id}).first()
    return {name: bool(row is not None and row[i]) for i, (name, _) in enumerate(rules)}


@functools.lru_cache(maxsize=256)
def _statement(rules: tuple[str, ...], at: datetime) -> Any:
    """The rules as one SELECT for one customer. Building and compiling it costs far more than
    running it: kept for the events of the same second (and compiled once: SQLAlchemy's cache)."""
    columns = [and_(CUSTOMERS.c.phone_status != "erased", compile_rule(rule, at)).label(f"r{i}")
               for i, rule in enumerate(rules)]
    return select(*columns).where(CUSTOMERS.c.id == bindparam("customer_id"))


def _memberships(session: Session, customer_id: str, plan: tuple[tuple[str, str], ...]) -> set[str]:
    return set(session.execute(select(MEMBERSHIPS.c.segment).where(
        MEMBERSHIPS.c.customer_id == customer_id, MEMBERSHIPS.c.segment.in_([n for n, _ in plan]))).scalars())


def _moves(session: Session, customer_id: str, plan: tuple[tuple[str, str], ...], at: datetime) -> bool:
    """Whether any membership in ``plan`` would change, in one query. Exact: if no rule
    that reads no segment moves, those reading segments see memberships as they will stay."""
    current = _memberships(session, customer_id, plan)
    matches = _matches(session, customer_id, list(plan), at)
    return any(matches[name] != (name in current) for name, _ in plan)


def _announce(session: Session, token: str, name: str, direction: str, customer_id: str, at: datetime) -> None:
    session.add(Decision(key=f"{OUTBOX}{token}:{name}:{direction}:{outbox_order()}",
                         value={"segment": name, "direction": direction, "at": at.isoformat(),
                                "customers": [customer_id]},
                         decided_at=utcnow()))


async def route_outbox(router: EventPath, token: str) -> int:
    """Route the outbox rows of ``token`` (this attempt's, and any a failed one left)."""
    def read() -> list[tuple[str, list[EventIn]]]:
        with session_scope(router.db, readonly=True) as session:
            return [(row.key, _events_of(row)) for row in _outbox_rows(session, f"{OUTBOX}{token}:")]

    routed = 0
    for key, events in await asyncio.to_thread(read):
        for event in events:
            await router.route(event, source=SOURCE)
            routed += 1
        await asyncio.to_thread(_forget_outbox, router.db, key)
    return routed
