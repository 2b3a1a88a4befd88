"""Segments benchmark: refreshing the shipped segments (journeys/segments.yaml) for a
large customer base, and events per second through the event path with immediate
membership on and off, on SQLite and on PostgreSQL.

For each database (a fresh SQLite file, or a PostgreSQL database created for the run
and dropped after), N customers are written in bulk, with a realistic spread: 70% have
bought (1-10 orders, the last 0-400 days ago, each a ``purchases`` row with one line
item of a category), spend with a long tail, tiers by spend, a few attributes; 30% of
customers clicked 1-3 links in the last 120 days, 10% replied, subscribers got 0-6
texts in the last 60 days: every field of the shipped rules has data. Then, timed:

1. first (silent): the first refresh of every rule segment from no memberships, without
   events (``announce=False``): the database work alone (compile, anti-joins, batched
   inserts). Meanwhile a probe thread stores an ordinary event every 20 ms through the
   engine's event store (``EventStore.store``, one write transaction each), and the
   probe's latencies show what a refresh costs normal traffic (on SQLite, every write
   transaction waits for the one in progress).
2. no change: the same refresh again: nothing enters or leaves, nothing is written.
3. first (announced): memberships cleared, then the first refresh again, now routing
   every segment_entered through the engine's event path (``EventRouter.route``:
   each event stored once, running journeys looked up; the catalog has no journeys, so
   no Temporal server is involved and nothing starts).
4. next day: a refresh one day later: those crossing the 30- and 180-day marks move.
5. events/s: ``--events`` events (half purchases, half link clicks) of random customers
   routed through ``EventRouter.route``, 8 at a time (as the API does), with immediate
   membership on (each re-evaluates the rules reading what it changed, and routes the
   segment events), then as many with it off (``immediate: false``).

    .venv/bin/python -m bench.segments [--customers 100000] [--backends sqlite,postgres]
                                       [--postgres-admin URL] [--skip-announced-first] [--events N]
                                       [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/segments.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, insert, select

from bench import harness
from core.event import EventIn
from core.events.router import EventRouter
from core.events.store import EventStore
from core.segments import refresh as segments
from language.catalog import Catalog
from language.validate import load_catalog
from store.db import session_scope
from store.tables import (
    Click,
    Customer,
    Event,
    Link,
    Message,
    Purchase,
    PurchaseItem,
    SegmentMembership,
    SegmentRefresh,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@dataclass
class Phase:
    name: str
    seconds: float
    entered: int = 0
    exited: int = 0
    events: int = 0
    per_segment: dict[str, float] = field(default_factory=dict)
    probe: dict[str, float] | None = None


@dataclass
class BackendResult:
    backend: str
    customers: int
    seed_seconds: float
    sizes: dict[str, int]
    phases: list[Phase]
    rates: list[Phase] = field(default_factory=list)  # events/s, immediate membership on and off


def shipped_segments() -> Catalog:
    catalog = load_catalog(ROOT / "journeys")
    catalog.journeys = {}  # the segments, settings and loyalty rules only: nothing starts
    return catalog


CATEGORIES = ["boots", "sneakers", "sandals", "running", "socks"]


def seed(db: Any, count: int, rng: random.Random) -> float:
    started = time.monotonic()
    consents = ["opted_in"] * 6 + ["none", "pending", "opted_out"]
    for first in range(0, count, 5000):
        rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (Customer, Purchase, PurchaseItem, Link, Click,
                                                                 Message, Event)}
        for i in range(first, min(first + 5000, count)):
            cid = f"cust-{i:07d}"
            bought = rng.random() < 0.7
            orders = rng.randint(1, 10) if bought else 0
            spent = round(orders * rng.lognormvariate(4, 1), 2) if bought else 0.0
            last = NOW - timedelta(seconds=rng.randrange(0, 400 * 86400)) if bought else None
            tier = ("platinum" if spent > 2000 else "gold" if spent > 500 else "silver") if bought else None
            gap = timedelta(days=rng.randrange(7, 120))  # this customer's habit
            moments = [last - n * gap for n in range(orders)] if last else []
            consent = rng.choice(consents)
            rows[Customer].append({
                "id": cid, "phone": None, "phone_status": "ok", "sms_consent": consent,
                "attributes": {"store": rng.choice(["north", "south", "online"])}, "orders_count": orders,
                "total_spent": spent, "first_purchase_at": moments[-1] if moments else None, "last_purchase_at": last,
                "points": int(spent), "tier": tier, "created_at": NOW, "updated_at": NOW,
            })
            for n, moment in enumerate(moments):
                rows[Purchase].append({"event_id": f"seed:{cid}:{n}", "customer_id": cid, "occurred_at": moment,
                                       "total": round(spent / orders, 2)})
                rows[PurchaseItem].append({"event_id": f"seed:{cid}:{n}", "line": 0, "customer_id": cid,
                                           "product": None, "category": rng.choice(CATEGORIES), "quantity": 1,
                                           "price": None, "occurred_at": moment})
            if rng.random() < 0.3:
                for n in range(rng.randint(1, 3)):
                    code = f"{i:07d}{n}"
                    at = NOW - timedelta(seconds=rng.randrange(0, 120 * 86400))
                    rows[Link].append({"code": code, "message_key": f"seed:{cid}:{n}", "url": "https://shop.example/",
                                       "customer_id": cid, "created_at": at})
                    rows[Click].append({"link_code": code, "event_id": f"click:{code}", "bot": None,
                                        "clicked_at": at})
            if rng.random() < 0.1:
                at = NOW - timedelta(seconds=rng.randrange(0, 120 * 86400))
                rows[Event].append({"id": f"seed-reply:{cid}", "customer_id": cid, "type": "sms_replied",
                                    "occurred_at": at, "received_at": at, "routed_at": at, "properties": {},
                                    "source": "bench"})
            if consent == "opted_in":
                for n in range(rng.randint(0, 6)):
                    at = NOW - timedelta(seconds=rng.randrange(0, 60 * 86400))
                    rows[Message].append({"id": f"m{i:07d}{n}", "key": f"seed:{cid}:{n}", "customer_id": cid,
                                          "status": "delivered", "sent_at": at, "created_at": at})
        with session_scope(db) as session:
            for table, batch in rows.items():
                if batch:
                    session.execute(insert(table.__table__), batch)  # type: ignore[attr-defined]
    if db.dialect.name == "postgresql":  # statistics, as autovacuum would have them for a live database:
        with db.connect() as connection:  # without them the planner scans inside the correlated subqueries
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return time.monotonic() - started


class Probe:
    """Ordinary traffic during a refresh: one event stored every ``every`` seconds."""

    def __init__(self, catalog: Catalog, db: Any, every: float = 0.02) -> None:
        self.store = EventStore(catalog, db)
        self.every = every
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.store.store(EventIn(id=f"probe:{uuid.uuid4().hex}", type="page_viewed",
                                     customer_id=f"cust-{random.randrange(1000):07d}", occurred_at=NOW), "bench")
            self.latencies.append(time.monotonic() - began)
            self._stop.wait(self.every)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        ms = [x * 1000 for x in self.latencies]
        return {"writes": len(ms), "p50_ms": round(harness.percentile(ms, 0.5), 1),
                "p99_ms": round(harness.percentile(ms, 0.99), 1), "max_ms": round(max(ms, default=0.0), 1)}


async def run_refresh(name: str, catalog: Catalog, db: Any, router: EventRouter | None, at: datetime,
                      announce: bool) -> Phase:
    report = await segments.refresh(catalog, db, router, at=at, announce=announce)
    phase = Phase(name, report.seconds, entered=sum(r.entered for r in report.segments),
                  exited=sum(r.exited for r in report.segments), events=report.events,
                  per_segment={r.segment: r.seconds for r in report.segments})
    harness.log(f"[{db.dialect.name}] {name}: {phase.seconds:.2f}s, {phase.events:,} events")
    return phase


def sizes(db: Any) -> dict[str, int]:
    with session_scope(db, readonly=True) as session:
        return dict(session.execute(select(SegmentMembership.segment, func.count())
                                    .group_by(SegmentMembership.segment)).all())


def clear(db: Any) -> None:
    with session_scope(db) as session:
        session.execute(delete(SegmentMembership))
        session.execute(delete(SegmentRefresh))


async def event_rate(name: str, catalog: Catalog, db: Any, count: int, customers: int, rng: random.Random,
                     concurrency: int = 8) -> Phase:
    """``count`` events (purchases and link clicks of random customers) through the event path."""
    # simulated: the event path evaluates segments as of the events' moment (NOW), not the wall clock.
    router = EventRouter(catalog, db, client=None, simulated=True)  # type: ignore[arg-type]
    tag = uuid.uuid4().hex[:8]
    events = [EventIn(id=f"bench:{tag}:{n}", type="purchase" if n % 2 else "link_clicked",
                      customer_id=f"cust-{rng.randrange(customers):07d}", occurred_at=NOW,
                      properties={"amount": 40, "items": [{"category": rng.choice(CATEGORIES)}]} if n % 2 else {})
              for n in range(count)]
    pending = iter(events)

    async def worker() -> None:
        for event in pending:  # one shared iterator: each event is routed once
            await router.route(event, source="bench")

    began = time.monotonic()
    before = segment_events(db)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.monotonic() - began
    moved = segment_events(db) - before
    phase = Phase(name, round(seconds, 2), events=count, entered=moved)
    harness.log(f"[{db.dialect.name}] {name}: {count:,} events in {seconds:.2f}s ({count / seconds:,.0f}/s), "
                f"{moved:,} segment events")
    return phase


def segment_events(db: Any) -> int:
    """segment_entered / segment_exited events stored so far."""
    with session_scope(db, readonly=True) as session:
        return int(session.execute(select(func.count()).select_from(Event)
                                   .where(Event.type.in_(["segment_entered", "segment_exited"]))).scalar_one())


async def bench(backend: str, db: Any, customers: int, announced_first: bool = True,
                events: int = 2000) -> BackendResult:
    catalog = shipped_segments()
    seeded = seed(db, customers, random.Random(42))
    harness.log(f"[{db.dialect.name}] seeded {customers:,} customers in {seeded:.1f}s")
    router = EventRouter(catalog, db, client=None)  # type: ignore[arg-type]  # no journeys: no Temporal
    phases = []
    with Probe(catalog, db) as probe:
        first = await run_refresh("first (silent)", catalog, db, None, NOW, announce=False)
    first.probe = probe.summary()
    phases.append(first)
    counted = sizes(db)
    phases.append(await run_refresh("no change", catalog, db, router, NOW, announce=True))
    if announced_first:
        clear(db)
        phases.append(await run_refresh("first (announced)", catalog, db, router, NOW, announce=True))
    phases.append(await run_refresh("next day", catalog, db, router, NOW + timedelta(days=1), announce=True))
    clear(db)  # memberships as of NOW again, so the events below move customers as live traffic would
    await run_refresh("back to now", catalog, db, None, NOW, announce=False)
    rates = [await event_rate("immediate on", catalog, db, events, customers, random.Random(7))]
    off = shipped_segments()
    off.segments = off.segments.model_copy(update={"immediate": False})
    rates.append(await event_rate("immediate off", off, db, events, customers, random.Random(8)))
    return BackendResult(backend, customers, round(seeded, 2), counted, phases, rates)


def print_result(result: BackendResult) -> None:
    print(f"\n{result.backend}: {result.customers:,} customers (seeded in {result.seed_seconds:.1f}s); "
          "sizes " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.sizes.items())))
    print(f"  {'phase':<20}{'seconds':>9}{'entered':>10}{'exited':>9}{'events':>10}{'events/s':>10}")
    for phase in result.phases:
        rate = f"{phase.events / phase.seconds:,.0f}" if phase.events and phase.seconds else "-"
        print(f"  {phase.name:<20}{phase.seconds:>9.2f}{phase.entered:>10,}{phase.exited:>9,}{phase.events:>10,}"
              f"{rate:>10}")
    slowest = max(result.phases[0].per_segment.items(), key=lambda kv: kv[1])
    print("  first (silent) by segment: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.phases[0].per_segment.items())
          + f" (slowest: {slowest[0]})")
    probe = result.phases[0].probe or {}
    print(f"  concurrent event writes during the first refresh: {probe.get('writes', 0):.0f}, "
          f"p50 {probe.get('p50_ms')} ms, p99 {probe.get('p99_ms')} ms, max {probe.get('max_ms')} ms")
    for measured in result.rates:
        print(f"  event path, {measured.name:<14}: {measured.events:,} events in {measured.seconds:.2f}s = "
              f"{measured.events / measured.seconds:,.0f} events/s ({measured.entered:,} segment events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-admin", default=os.environ.get(
        "JOURNEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        help="A PostgreSQL URL allowed to create a database for the run")
    parser.add_argument("--skip-announced-first", action="store_true",
                        help="Leave out phase 3 (it routes one event per new membership: minutes at 100,000)")
    parser.add_argument("--events", type=int, default=2000,
                        help="Events routed for each of the two events/s phases (immediate on, off)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        if backend not in ("sqlite", "postgres"):
            parser.error(f"unknown backend {backend!r}: sqlite or postgres")
        # A temporary SQLite file, or a PostgreSQL database created for the run and dropped after.
        server = args.postgres_admin if backend == "postgres" else None
        with (tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp,
              harness.fresh_database(server, Path(tmp), "segments") as db):
            results.append(asyncio.run(bench(backend, db, args.customers, not args.skip_announced_first,
                                             args.events)))
        if not args.json:
            print_result(results[-1])
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    harness.print_load_average(to_stderr=args.json)


if __name__ == "__main__":
    main()
