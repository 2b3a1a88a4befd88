"""Helpers for runtime tests: write a journeys directory, run a simulation on it."""

from __future__ import annotations

import contextlib
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from language.catalog import Catalog
from language.validate import load_catalog
from messaging.senders.base import OutgoingSms, ProviderMessage, ProviderReceipt
from processes.simulate import CustomerSpec, Simulation, parse_event_spec
from store.db import session_scope
from store.tables import Customer, Enrollment, Message

# A Monday, 15:00 UTC: 10:00 in New York, 16:00 in Stockholm: outside quiet hours in both.
MONDAY_3PM = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

SETTINGS = """
brand: Nordic Shoes
default_country: US
default_timezone: America/New_York
quiet_hours: {start: "21:00", end: "08:00"}
frequency_caps: [{max: 1, per: 24h}, {max: 4, per: 7d}]
"""
SEGMENTS = """
segments:
  lapsed_30d: {rule: "customer.days_since_last_purchase >= 30"}
  vip: {rule: "customer.tier in ['gold', 'platinum']"}
  active: {manual: true}
  follow_up: {manual: true}
"""
LOYALTY = """
points: {per_currency_unit: 1, expire_after: 365d}
tiers:
  - {name: silver, min_points: 0}
  - {name: gold, min_points: 500}
coupons:
  WELCOME10: {discount: "10%", expires_in: 30d}
"""


def write_journeys(root: Path, journeys: dict[str, str], *, settings: str = SETTINGS,
                   templates: dict[str, str] | None = None) -> Catalog:
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text(textwrap.dedent(settings))
    (root / "segments.yaml").write_text(textwrap.dedent(SEGMENTS))
    (root / "loyalty.yaml").write_text(textwrap.dedent(LOYALTY))
    if templates:
        (root / "templates").mkdir(exist_ok=True)
        for name, text in templates.items():
            (root / "templates" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in journeys.items():
        (root / f"{name}.yaml").write_text(textwrap.dedent(text))
    return load_catalog(root)


class CountingSender:
    """Accepts every message, and remembers each one it was asked to send."""

    name = "test"

    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        with self._lock:
            self.sent.append(sms)
            return ProviderReceipt(provider_message_id=f"SM{len(self.sent):032d}", status="queued")

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Its own records, as a provider's Messages list (newest first)."""
        with self._lock:
            return [ProviderMessage(provider_message_id=f"SM{n + 1:032d}", body=sms.body, status="queued",
                                    created_at=None) for n, sms in reversed(list(enumerate(self.sent))) if sms.to == to]


@dataclass
class Run:
    """One simulation: the Simulation plus shortcuts for the assertions tests make."""

    sim: Simulation
    delivered: list[dict[str, Any]] = field(default_factory=list)

    async def customer(self, **fields: Any) -> CustomerSpec:
        spec = CustomerSpec(**fields)
        await self.sim.add_customer(spec)
        return spec

    async def enter(self, journey: str, customer: str = "sim-customer", trigger: str | None = None) -> bool:
        return await self.sim.enter(self.sim.catalog.journey(journey), customer, trigger)

    async def at(self, spec: str, customer: str = "sim-customer") -> dict[str, Any]:
        """Deliver `TYPE@+OFFSET [json]` (or click:/reply:/stop@) at its moment."""
        entry = await self.sim.deliver(customer, parse_event_spec(spec))
        self.delivered.append(entry)
        return entry

    async def advance(self, delta: timedelta) -> None:
        await self.sim.advance_to(self.sim.clock + delta)

    async def timeline(self, journey: str, customer: str = "sim-customer") -> dict[str, Any]:
        result = await self.sim.result(journey, customer)
        spec = CustomerSpec(id=customer)
        return self.sim.report(self.sim.catalog.journey(journey), spec, result, [])

    def messages(self, customer: str = "sim-customer") -> list[Message]:
        with session_scope(self.sim.db) as session:
            return list(session.exec(select(Message).where(Message.customer_id == customer)
                                     .order_by(col(Message.created_at))).all())

    def customer_row(self, customer: str = "sim-customer") -> Customer:
        with session_scope(self.sim.db) as session:
            row = session.get(Customer, customer)
            assert row is not None
            return row

    def enrollments(self, journey: str, customer: str = "sim-customer") -> list[Enrollment]:
        with session_scope(self.sim.db) as session:
            return list(session.exec(select(Enrollment).where(Enrollment.journey_id == journey,
                                                              Enrollment.customer_id == customer)).all())


def sms(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in timeline["timeline"] if entry["action"] == "sms"]


class Around(str):
    """An ISO moment that equals any timeline time within a few seconds of it.

    The time-skipping server's clock also moves with real time while workers work, so
    a simulated time can drift by the (load-dependent) seconds processing takes: 5 s were
    seen with the suite on both cores. The rules under test are hours apart."""

    TOLERANCE = timedelta(seconds=30)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        try:
            mine, theirs = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in (str(self), other))
        except ValueError:
            return False
        return abs(mine - theirs) <= self.TOLERANCE

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = str.__hash__


def at(offset: str) -> Around:
    """The moment `offset` after MONDAY_3PM, as timelines print it."""
    from processes.simulate import _iso, parse_offset

    return Around(_iso(MONDAY_3PM + parse_offset(offset)))


def around(moment: str) -> Around:
    return Around(moment)


@contextlib.contextmanager
def temporal_unreachable(router: Any) -> Iterator[None]:
    """Journey starts fail inside the block, as when Temporal cannot be reached: what is
    stored then is stored but not routed."""
    real_enter = router.starter.enter  # every start goes through it

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Temporal unreachable")

    router.starter.enter = down
    try:
        yield
    finally:
        router.starter.enter = real_enter


DIRECT_MOMENT = datetime(2026, 3, 2, 15, tzinfo=UTC)


def consented_sender_activities(db: Any, catalog: Any, sender: Any, **deps: Any) -> Any:
    """The send activities called directly, as a retry or a replay would, for customer
    `c1` (opted in, a US number) at DIRECT_MOMENT."""
    from activities.deps import Deps
    from activities.sending import SendingActivities
    from core.customers import consent
    from store.tables import Customer

    with session_scope(db) as session:
        session.add(Customer(id="c1", phone="+12015550123", created_at=DIRECT_MOMENT, updated_at=DIRECT_MOMENT))
    consent.record(db, "c1", "opted_in", source="test", at=DIRECT_MOMENT)
    return SendingActivities(Deps(catalog=catalog, db=db, sender=sender, router=None, **deps))


def direct_call(message: Any, *, at: datetime = DIRECT_MOMENT, step_key: str = "text") -> Any:
    """The SendInput of one step of run `e1` for customer `c1`."""
    from workflows.contracts import Facts, RunRef, SendInput

    return SendInput(run=RunRef(enrollment_id="e1", customer_id="c1", journey_id="promo", journey_version="v",
                                simulated=True),
                     at=at, step_key=step_key, facts=Facts(entered_at=DIRECT_MOMENT), message=message,
                     purpose="marketing")
