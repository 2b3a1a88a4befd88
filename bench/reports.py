"""Reports benchmark: the journey report and the program report over a year of history
at real volume (100,000 customers, about 1,000,000 messages), on SQLite and PostgreSQL.

For each database (a temporary SQLite file; a PostgreSQL database created for the run
and dropped after), migrated with the real migrations, the history of the shipped
journeys (journeys/: winback, welcome, post_purchase, ...) is written in bulk
(PostgreSQL: COPY; SQLite: executemany in large transactions): three versions per
journey, enrollments with their variants, outcomes and conversions, every text with a
realistic status (delivered, sent, undelivered, failed, skipped by reason, deferred,
unconfirmed; reprompts of questions), links on the texts that have one and clicks on
about 5% of them (bots too), replies and STOPs after texts, coupons issued and
redeemed, purchases with their points, tier changes and referrals. Then, timed:

- journey_report of the largest journey (winback): cold (the first call, on a fresh
  connection pool) and warm (the median of --repeat calls); the split journey
  (vip_flash_sale) warm; program_report (the whole history) warm;
- once each, the paths people use: `journeys report winback --json` as a process
  (interpreter start included) and GET /reports/journeys/winback through the API app.

    .venv/bin/python -m bench.reports [--customers 100000] [--messages 1000000]
                                      [--backends sqlite,postgres] [--repeat 5] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/reports.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlmodel import col

from bench import harness
from core.reports import journey as journey_module
from core.reports.journey import journey_report
from core.reports.outline import outline
from core.reports.program import program_report
from language.catalog import Catalog
from language.models import SplitStep
from language.validate import load_catalog
from store.db import Database, normalize_url, open_database
from store.migrate import upgrade
from store.tables import Customer

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
MAIN, SPLIT = "winback", "vip_flash_sale"
# Share of the journey texts per journey (the rest of the messages: keyword replies).
SHARES = {"winback": 0.40, "welcome": 0.18, "post_purchase": 0.12, "abandoned_cart": 0.10, "vip_flash_sale": 0.08,
          "birthday": 0.05, "points_expiry": 0.03, "tier_upgrade": 0.02}
SKIP_REASONS = ["frequency_cap"] * 4 + ["no_consent"] * 2 + ["opted_out"] * 2 + ["journey_ended", "too_long"]
TOKEN = "bench-token"


# --- the history ------------------------------------------------------------------------------


@dataclass
class SendStep:
    key: str
    branch: str | None
    depth: int
    link: bool
    coupon: str | None
    asks: bool


@dataclass
class Plan:
    journey_id: str
    versions: list[tuple[str, datetime]]  # oldest first; the last is the catalog's
    sends: list[SendStep]
    split: tuple[str, list[tuple[str, int]]] | None  # name, [(variant, weight)]


def plans(catalog: Catalog) -> dict[str, Plan]:
    found = {}
    for journey_id in SHARES:
        pinned = catalog.journeys[journey_id]
        steps = outline(pinned.journey.steps)
        sends = []
        for s in steps:
            if not s.sends:
                continue
            body = json.dumps(s.step.model_dump(mode="json", by_alias=True))
            coupon = re.search(r"coupon\('([A-Z0-9_]+)'\)", body)
            sends.append(SendStep(s.key, s.branch, s.depth, "link(" in body, coupon.group(1) if coupon else None,
                                  s.kind == "ask"))
        split = next(((s.step.split.name, [(v.name, v.weight) for v in s.step.split.variants])
                      for s in steps if isinstance(s.step, SplitStep)), None)
        versions = [(f"{pinned.version[:8]}old{n}", NOW - timedelta(days=365 - 120 * n)) for n in range(2)]
        found[journey_id] = Plan(journey_id, [*versions, (pinned.version, NOW - timedelta(days=125))], sends, split)
    return found


PARENTS = {"clicks": "links", "consent_records": "customers"}  # foreign keys


class Writer:
    """Rows in bulk, per table: COPY on PostgreSQL, executemany on SQLite, flushed
    every ``batch`` rows of a table (SQLite: one transaction per flush)."""

    def __init__(self, db: Database, batch: int = 50_000) -> None:
        self.db, self.batch = db, batch
        self.sqlite = db.dialect.name == "sqlite"
        self.raw: Any = db.raw_connection()
        self.pending: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
        self.counts: dict[str, int] = {}

    def add(self, table: str, columns: tuple[str, ...], row: tuple[Any, ...]) -> None:
        rows = self.pending.setdefault(table, (columns, []))[1]
        rows.append(row)
        if len(rows) >= self.batch:
            self.flush(table)

    def flush(self, table: str) -> None:
        columns, rows = self.pending.pop(table, ((), []))
        if not rows:
            return
        self.counts[table] = self.counts.get(table, 0) + len(rows)
        if table in PARENTS:  # after the rows they reference
            self.flush(PARENTS[table])
        cursor = self.raw.cursor()
        if self.sqlite:
            cursor.execute("BEGIN")
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                               [tuple(_sqlite_value(v) for v in row) for row in rows])
        else:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        if self.sqlite:
            cursor.execute("COMMIT")
        else:
            self.raw.commit()
        cursor.close()

    def close(self) -> None:
        for table in list(self.pending):
            self.flush(table)
        self.raw.close()


def _sqlite_value(value: Any) -> Any:
    # How SQLAlchemy stores a UTC timestamp on SQLite (store/types.py strips the zone).
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


CUSTOMER = ("id", "phone", "phone_status", "first_name", "attributes", "sms_consent", "orders_count", "total_spent",
            "first_purchase_at", "last_purchase_at", "points", "tier", "created_at", "updated_at", "email_consent")
ENROLLMENT = ("id", "journey_id", "journey_version", "customer_id", "workflow_id", "occasion", "status",
              "variants", "outcome", "entered_at", "started_at", "ended_at", "converted_at", "conversion_value")
MESSAGE = ("id", "key", "customer_id", "enrollment_id", "journey_id", "journey_version", "step_id", "purpose",
           "counts_toward_caps", "expects_reply", "segments", "status", "reason", "provider", "created_at", "sent_at",
           "updated_at")
LINK = ("code", "message_key", "url", "customer_id", "enrollment_id", "journey_id", "journey_version", "step_id",
        "created_at")
CLICK = ("link_code", "event_id", "bot", "clicked_at", "enrollment_id", "journey_id", "journey_version", "step_id")
EVENT = ("id", "customer_id", "type", "occurred_at", "received_at", "properties", "source")
CONSENT = ("customer_id", "status", "source", "occurred_at", "recorded_at", "channel")
COUPON = ("code", "series", "key", "customer_id", "issued_at", "expires_at", "redeemed_at", "enrollment_id",
          "journey_id", "journey_version", "step_id")
POINTS = ("key", "customer_id", "points", "reason", "occurred_at", "expires_at", "source")
PURCHASE = ("event_id", "customer_id", "occurred_at", "total")


class History:
    """Writes the seeded history; deterministic for a seed."""

    def __init__(self, writer: Writer, catalog: Catalog, customers: int, messages: int, seed: int = 7) -> None:
        self.w, self.catalog, self.customers, self.messages = writer, catalog, customers, messages
        self.rng = random.Random(seed)
        self.serial = self.texts = 0
        self.opted_out: set[int] = set()

    def next_id(self) -> str:
        self.serial += 1
        return f"{self.serial:032x}"

    def ago(self, days: float) -> datetime:
        return NOW - timedelta(seconds=self.rng.uniform(0, days * 86400))

    def cid(self, n: int) -> str:
        return f"cust-{n:07d}"

    def write(self) -> None:
        found = plans(self.catalog)
        for journey_id, plan in found.items():
            definition = json.dumps(self.catalog.journeys[journey_id].journey.model_dump(mode="json", by_alias=True))
            for version, seen in plan.versions:
                self.w.add("journey_versions", ("journey_id", "version", "definition", "first_seen_at"),
                           (journey_id, version, definition, seen))
        self.purchases_and_loyalty()
        self.customer_rows()
        self.w.flush("customers")  # before the consent records that reference them
        journey_texts = int(self.messages * 0.98)
        for journey_id, share in SHARES.items():
            self.journey(found[journey_id], int(journey_texts * share))
        self.keyword_replies(self.messages - self.texts)

    def journey(self, plan: Plan, budget: int) -> None:
        rng, written = self.rng, 0
        while written < budget:
            customer = rng.randrange(self.customers)
            entered = self.ago(365)
            version = next((v for v, seen in reversed(plan.versions) if seen <= entered), plan.versions[0][0])
            variant = None
            if plan.split is not None:
                names, weights = zip(*plan.split[1], strict=True)
                variant = rng.choices(names, weights)[0]
            ended = entered < NOW - timedelta(days=30) or rng.random() < 0.3
            converted = rng.random() < (0.04 if variant == "holdout" else 0.07)
            outcome = rng.choice(["completed"] * 6 + ["exited:purchase"] * 2 + ["no_click"]) if ended else None
            enrollment = self.next_id()
            converted_at = entered + timedelta(hours=rng.uniform(1, 160)) if converted else None
            self.w.add("enrollments", ENROLLMENT, (
                enrollment, plan.journey_id, version, self.cid(customer), f"journey:{plan.journey_id}:{enrollment}",
                None, "ended" if ended else "active",
                json.dumps({plan.split[0]: variant} if plan.split else {}), outcome, entered,
                entered, entered + timedelta(days=20) if ended else None, converted_at,
                round(rng.lognormvariate(4, 0.6), 2) if converted else None))
            at = entered
            for step in plan.sends:
                if step.branch and step.branch.startswith("variant.") and step.branch != f"variant.{variant}":
                    continue
                if rng.random() > (0.92 if step.depth == 0 else 0.55):
                    continue
                at = at + timedelta(hours=rng.uniform(0.01, 72))
                written += self.text(plan, version, step, enrollment, customer, at)
            if rng.random() < 0.03 and plan.journey_id == "abandoned_cart":
                self.event(customer, "cart_abandoned", entered, {})

    def text(self, plan: Plan, version: str, step: SendStep, enrollment: str, customer: int, at: datetime) -> int:
        rng = self.rng
        u = rng.random()
        status, reason = (("skipped", rng.choice(SKIP_REASONS)) if u < 0.05 else ("deferred", "quiet_hours")
                          if u < 0.055 else ("failed", None) if u < 0.065 else ("unconfirmed", None) if u < 0.067
                          else ("undelivered", None) if u < 0.082 else ("sent", None) if u < 0.12
                          else ("delivered", None))
        handed = status in ("sent", "delivered", "undelivered", "unconfirmed")
        key = f"{enrollment}:{step.key}"
        segments = rng.choice((1, 2, 2, 3)) if handed else None
        self.w.add("messages", MESSAGE, (
            uuid.UUID(int=rng.getrandbits(128)).hex, key, self.cid(customer), enrollment, plan.journey_id, version,
            step.key,
            "marketing", True, step.asks, segments, status, reason, "twilio" if handed else None, at,
            at if handed else None, at))
        self.texts += 1
        count = 1
        if not handed:
            return count
        if step.asks and rng.random() < 0.25:  # a reprompt: its segments cost, it is no new text
            later = at + timedelta(hours=24)
            self.w.add("messages", MESSAGE, (
                uuid.UUID(int=rng.getrandbits(128)).hex, f"{key}.reprompt", self.cid(customer), enrollment,
                plan.journey_id, version, step.key, "marketing", False, True, 1, "delivered", None, "twilio", later,
                later, later))
            self.texts += 1
            count += 1
        if step.link:
            code = uuid.UUID(int=rng.getrandbits(128)).hex[:16]
            self.w.add("links", LINK, (code, key, "https://nordicshoes.example/", self.cid(customer), enrollment,
                                       plan.journey_id, version, step.key, at))
            origin = (enrollment, plan.journey_id, version, step.key)  # the link's, copied on each click
            if rng.random() < 0.15:  # a link preview
                self.w.add("clicks", CLICK, (code, None, "head", at + timedelta(seconds=5), *origin))
            if status == "delivered" and rng.random() < 0.055:
                clicked = at + timedelta(minutes=rng.uniform(1, 600))
                self.w.add("clicks", CLICK, (code, f"click:{code}", None, clicked, *origin))
                self.event(customer, "link_clicked", clicked, {"journey_id": plan.journey_id, "step": step.key},
                           event_id=f"click:{code}")
                for _ in range(rng.choice((0, 0, 0, 1, 2))):
                    self.w.add("clicks", CLICK, (code, None, None, clicked + timedelta(minutes=rng.uniform(1, 99)),
                                                 *origin))
        if step.coupon:
            redeemed = at + timedelta(days=rng.uniform(0, 10)) if rng.random() < 0.08 else None
            self.w.add("coupons", COUPON, (f"C{rng.getrandbits(48):012X}", step.coupon, f"{key}:{step.coupon}",
                                           self.cid(customer), at, at + timedelta(days=14), redeemed, enrollment,
                                           plan.journey_id, version, step.key))
        if status == "delivered":
            u = rng.random()
            if u < 0.02:  # a reply: most within the window, some after it
                self.event(customer, "sms_replied", at + timedelta(hours=rng.uniform(0.01, 72)), {"text": "ok"})
            elif u < 0.027 and customer not in self.opted_out:
                self.opted_out.add(customer)
                stop = at + timedelta(hours=rng.uniform(0.01, 96))
                self.w.add("consent_records", CONSENT,
                           (self.cid(customer), "opted_out", "sms_keyword", stop, stop, "sms"))
        return count

    def event(self, customer: int, kind: str, at: datetime, properties: dict[str, Any],
              event_id: str | None = None) -> None:
        self.w.add("events", EVENT, (event_id or f"{kind}:{self.next_id()}", self.cid(customer), kind, at, at,
                                     json.dumps(properties), "api"))

    def keyword_replies(self, count: int) -> None:
        """Texts that belong to no journey: keyword answers (YES, HELP, STOP confirmations)."""
        for n in range(max(0, count)):
            at = self.ago(365)
            self.w.add("messages", MESSAGE, (
                uuid.UUID(int=self.rng.getrandbits(128)).hex, f"reply:keyword:{n}",
                self.cid(self.rng.randrange(self.customers)), None, None, None, None, "reply", False, False, 1,
                "delivered", None, "twilio", at, at, at))

    def purchases_and_loyalty(self) -> None:
        rng = self.rng
        self.bought: dict[int, tuple[datetime, datetime, int, float]] = {}
        for customer in range(self.customers):
            if rng.random() > 0.7:
                continue
            orders = rng.randint(1, 8)
            moments = sorted(self.ago(700) for _ in range(orders))
            spent = 0.0
            for n, at in enumerate(moments):
                amount = round(rng.lognormvariate(4, 0.7), 2)
                spent += amount
                event_id = f"purchase:{customer}:{n}"
                self.event(customer, "purchase", at, {"amount": amount}, event_id=event_id)
                self.w.add("purchases", PURCHASE, (event_id, self.cid(customer), at, amount))
                self.w.add("points_ledger", POINTS, (f"purchase:{event_id}", self.cid(customer), int(amount),
                                                     "purchase", at, at + timedelta(days=365), "purchase"))
                if n % 2 == 1:
                    self.w.add("points_ledger", POINTS, (f"punch:{event_id}", self.cid(customer), 10, "punch card",
                                                         at, at + timedelta(days=365), "punch_card"))
            if spent > 500:
                self.event(customer, "tier_changed", moments[-1], {"from": "silver", "to": "gold",
                                                                   "direction": "up"})
            if rng.random() < 0.01:
                self.event(customer, "referral_converted", moments[0], {})
            self.bought[customer] = (moments[0], moments[-1], orders, round(spent, 2))
        for _ in range(self.customers * 2):  # everything else customers do
            self.event(rng.randrange(self.customers), "page_viewed", self.ago(365), {"path": "/"})

    def customer_rows(self) -> None:
        for customer in range(self.customers):
            first, last, orders, spent = self.bought.get(customer, (None, None, 0, 0.0))
            tier = ("gold" if spent > 500 else "silver") if orders else None
            self.w.add("customers", CUSTOMER, (
                self.cid(customer), f"+1555{customer:07d}", "ok", "Ann", "{}", "opted_in", orders, spent, first,
                last, int(spent), tier, NOW - timedelta(days=730), NOW, "none"))
            joined = NOW - timedelta(days=730)
            self.w.add("consent_records", CONSENT, (self.cid(customer), "opted_in", "import", joined, joined, "sms"))


def seed(db: Database, catalog: Catalog, customers: int, messages: int) -> tuple[float, dict[str, int]]:
    started = time.monotonic()
    writer = Writer(db)
    history = History(writer, catalog, customers, messages)
    history.write()
    writer.close()
    with db.begin() as connection:
        stopped = [history.cid(n) for n in sorted(history.opted_out)]
        for first in range(0, len(stopped), 5000):
            connection.execute(update(Customer).where(col(Customer.id).in_(stopped[first:first + 5000]))
                               .values(sms_consent="opted_out"))
    # Fresh statistics and visibility map, as autovacuum keeps them on PostgreSQL (also after
    # inserts alone): without the map an index-only scan still reads every table row.
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE" if db.dialect.name == "sqlite" else "VACUUM ANALYZE"))
    return time.monotonic() - started, dict(sorted(writer.counts.items()))


# --- the timings -----------------------------------------------------------------------------


@dataclass
class Timing:
    report: str
    seconds: float
    runs: int = 1
    spread: str = ""
    cpu: float | None = None  # CPU seconds of the call: this process + its PostgreSQL backend


@dataclass
class BackendResult:
    backend: str
    seed_seconds: float
    rows: dict[str, int]
    timings: list[Timing] = field(default_factory=list)


def timed(call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def warm(name: str, call: Callable[[], Any], repeat: int) -> Timing:
    times = [timed(call) for _ in range(repeat)]
    return Timing(name, statistics.median(times), repeat, f"{min(times):.3f}-{max(times):.3f}")


def journey_call(catalog: Catalog, journey_id: str) -> Callable[[Database], Any]:
    pinned = catalog.journeys[journey_id]
    return lambda db: journey_report(db, journey_id, settings=catalog.settings, current=pinned.journey,
                                     current_version=pinned.version)


def per_query(db: Database, catalog: Catalog, journey_id: str, repeat: int) -> dict[str, float]:
    """Each query of the journey report, timed on its own: median seconds over ``repeat``
    warm reports, by the name of the method that ran it (``_coupons``, ``_attributed`` x2,
    ...; a name that runs several times, such as ``_variants``, is summed per report)."""
    spent: list[dict[str, float]] = []
    original = journey_module._Queries._rows

    def timed_rows(self: Any, query: Any) -> list[Any]:
        caller = sys._getframe(1).f_code.co_name
        began = time.perf_counter()
        rows = original(self, query)
        spent[-1][caller] = spent[-1].get(caller, 0.0) + time.perf_counter() - began
        return rows

    journey_module._Queries._rows = timed_rows  # type: ignore[method-assign]
    try:
        for _ in range(repeat):
            spent.append({})
            journey_call(catalog, journey_id)(db)
    finally:
        journey_module._Queries._rows = original  # type: ignore[method-assign]
    return {name: statistics.median(s.get(name, 0.0) for s in spent) for name in spent[0]}


def program_call(db: Database) -> Any:
    return program_report(db, until=NOW)


class CpuMeter:
    """The CPU a report costs, whatever else the machine runs: this process's CPU plus, on
    PostgreSQL, its one backend's (a pool of one connection, parallel workers off so that
    the backend does all the database's work), read from /proc. What the call would take
    on an idle core."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.postgres = not url.startswith("sqlite")
        self.db = (create_engine(normalize_url(url), pool_size=1, max_overflow=0,
                                 connect_args={"options": "-c max_parallel_workers_per_gather=0"})
                   if self.postgres else open_database(url))
        self.backend: int | None = None
        if self.postgres:
            with self.db.connect() as connection:
                self.backend = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def seconds(self) -> float:
        return harness.process_cpu_seconds(os.getpid()) + harness.process_cpu_seconds(self.backend)

    def median(self, call: Callable[[Database], Any], repeat: int) -> float:
        spent = []
        for _ in range(repeat):
            before = self.seconds()
            call(self.db)
            spent.append(self.seconds() - before)
        return statistics.median(spent)

    def close(self) -> None:
        self.db.dispose()


def api_call(db: Database, catalog: Catalog) -> float:
    import httpx

    from api.app import create_app
    from api.services import Services
    from core.events.router import EventRouter

    async def run() -> float:
        services = Services.build(catalog, db, EventRouter(catalog, db, client=None),  # type: ignore[arg-type]
                                  api_token=TOKEN)
        app = create_app(services)
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http):
            began = time.perf_counter()
            response = await http.get(f"/reports/journeys/{MAIN}", headers={"Authorization": f"Bearer {TOKEN}"})
            seconds = time.perf_counter() - began
        response.raise_for_status()
        return seconds

    return asyncio.run(run())


def cli_call(url: str) -> float:
    env = {**os.environ, "JOURNEYS_DATABASE_URL": url, "JOURNEYS_DIR": str(ROOT / "journeys")}
    began = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "journeys"), "report", MAIN, "--json"], env=env,
                          capture_output=True, timeout=600)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"journeys report failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def bench(backend: str, db: Database, catalog: Catalog, customers: int, messages: int, repeat: int,
          *, seeded: bool = False) -> BackendResult:
    if seeded:
        seconds, rows = 0.0, counted(db)
        harness.log(f"[{backend}] reusing the seeded database: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    else:
        harness.log(f"[{backend}] seeding {customers:,} customers, ~{messages:,} messages ...")
        seconds, rows = seed(db, catalog, customers, messages)
        harness.log(f"[{backend}] seeded in {seconds:.0f}s: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    result = BackendResult(backend, round(seconds, 1), rows)
    url = db.url.render_as_string(hide_password=False)
    fresh = open_database(url)  # cold: no connection, no cached plan
    try:
        result.timings.append(Timing(f"journey {MAIN} (cold)", timed(lambda: journey_call(catalog, MAIN)(fresh))))
    finally:
        fresh.dispose()
    meter = CpuMeter(url)
    try:
        for name, call in ((f"journey {MAIN} (warm)", journey_call(catalog, MAIN)),
                           (f"journey {SPLIT} (warm)", journey_call(catalog, SPLIT)),
                           ("program, all history (warm)", program_call)):
            timing = warm(name, lambda call=call: call(db), repeat)  # type: ignore[misc]
            timing.cpu = meter.median(call, repeat)
            result.timings.append(timing)
    finally:
        meter.close()
    for name, seconds in sorted(per_query(db, catalog, MAIN, repeat).items(), key=lambda q: -q[1]):
        result.timings.append(Timing(f"  journey {MAIN}, query {name} (warm)", seconds, repeat))
    result.timings.append(Timing(f"API GET /reports/journeys/{MAIN}", api_call(db, catalog)))
    result.timings.append(Timing(f"CLI journeys report {MAIN} --json (process)", cli_call(url)))
    for t in result.timings:
        harness.log(f"[{backend}] {t.report}: {t.seconds:.3f}s" + (f" (CPU {t.cpu:.3f}s)" if t.cpu else ""))
    return result


def counted(db: Database) -> dict[str, int]:
    """The row counts of a database seeded by an earlier run (``--database``)."""
    with db.connect() as connection:
        return {table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("customers", "messages", "enrollments", "links", "clicks", "events", "coupons")}


def print_results(results: list[BackendResult]) -> None:
    print(f"\n{'backend':<11}{'messages':>10}{'customers':>10}  {'report':<44}{'seconds':>9}{'CPU s':>8}"
          "  median of: range")
    for r in results:
        for t in r.timings:
            extra = f"{t.runs}: {t.spread}" if t.runs > 1 else ""
            cpu = f"{t.cpu:.3f}" if t.cpu is not None else "-"
            print(f"{r.backend:<11}{r.rows.get('messages', 0):>10,}{r.rows.get('customers', 0):>10,}  "
                  f"{t.report:<44}{t.seconds:>9.3f}{cpu:>8}  {extra}")
    print("seconds: wall time on this machine (with whatever else runs on it); CPU s: what the call itself "
          "costs (this process + its PostgreSQL backend, no parallel workers), the time on an idle core")
    for r in results:
        print(f"{r.backend} rows (seeded in {r.seed_seconds:.0f}s): " + ", ".join(f"{k} {v:,}" for k, v in
                                                                               r.rows.items()))


@contextlib.contextmanager
def postgres_database(admin_url: str, keep: bool) -> Iterator[Database]:
    import psycopg

    admin = make_url(normalize_url(admin_url)).set(drivername="postgresql")
    name = f"journeys_bench_{uuid.uuid4().hex[:8]}"
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = open_database(admin.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(db)
        yield db
    finally:
        db.dispose()
        if keep:
            harness.log(f"kept PostgreSQL database {name}")
        else:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def sqlite_database(keep: bool) -> Iterator[Database]:
    workdir = Path(tempfile.mkdtemp(prefix="journeys-bench-reports-"))
    path = workdir / "reports.db"
    db = open_database(f"sqlite:///{path}")
    try:
        upgrade(db)
        yield db
    finally:
        db.dispose()
        if keep:
            harness.log(f"kept SQLite database {path}")
        else:
            for leftover in workdir.iterdir():
                leftover.unlink()
            workdir.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=5, help="Calls per warm timing (the median is shown)")
    parser.add_argument("--postgres-admin", default=os.environ.get(
        "JOURNEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        help="A PostgreSQL URL allowed to create a database for the run")
    parser.add_argument("--keep", action="store_true", help="Keep the seeded databases (their names are printed)")
    parser.add_argument("--database", metavar="URL",
                        help="Time the reports on a database an earlier --keep run seeded (migrated to the "
                             "newest revision first, so a new migration's back-fill runs on it); no seeding")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    catalog = load_catalog(ROOT / "journeys")
    results = []
    if args.database:
        reused = open_database(args.database)
        try:
            began = time.monotonic()
            upgrade(reused)
            with reused.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("ANALYZE" if reused.dialect.name == "sqlite" else "VACUUM ANALYZE"))
            harness.log(f"migrated to the newest revision and vacuumed in {time.monotonic() - began:.1f}s")
            backend = "PostgreSQL" if reused.dialect.name == "postgresql" else "SQLite"
            results.append(bench(backend, reused, catalog, 0, 0, args.repeat, seeded=True))
        finally:
            reused.dispose()
    for backend in args.backends.split(",") if not args.database else ():
        if backend not in ("sqlite", "postgres"):
            parser.error(f"unknown backend {backend!r}: sqlite or postgres")
        databases = (postgres_database(args.postgres_admin, args.keep) if backend == "postgres"
                     else sqlite_database(args.keep))
        with databases as db:
            results.append(bench("PostgreSQL" if backend == "postgres" else "SQLite", db, catalog, args.customers,
                                 args.messages, args.repeat))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print_results(results)
    harness.print_load_average(to_stderr=args.json)


if __name__ == "__main__":
    main()
