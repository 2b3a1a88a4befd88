"""Throughput benchmark: the journey engine against a hand-written Temporal workflow.

Starts a local Temporal dev server (in memory, on free ports), then runs N customers
through

* the engine: a benchmark journey (send_sms, wait 1s, if, award_points,
  update_segments) on workers from ``processes.workers.build_workers``, started through
  the engine's own path (``Starter.start``: DB admission, then an eager start);
* the baseline: the same work written by hand (``bench.baseline_workflow``), plain
  activities with the same kind of DB writes and a 1 s timer, started with
  ``client.start_workflow``;

one after the other, each with a fresh database, and prints journeys/s for both,
their ratio and history events per run. The server is always stopped at the end.

    .venv/bin/python -m bench.throughput [--customers 500] [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/throughput.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Worker

from bench import baseline_workflow as baseline
from bench import harness
from core.customers.records import get_customer
from core.events.router import EventRouter
from language.catalog import Catalog
from messaging.senders.base import OutgoingSms
from processes.workers import build_workers
from store.db import session_scope
from store.tables import Message, PointsEntry, SegmentMembership
from workflows.io import JourneyResult, workflow_id

JOURNEY_ID = "bench"
SEGMENT = "bench_done"
POINTS = 10
TEXT = "Bench Shoes: hi {{ customer.first_name | default('there') }}, thanks for being a member. Reply STOP to opt out."


# --- the journeys directory -------------------------------------------------------------


def write_journeys(root: Path, now: datetime) -> Catalog:
    """The benchmark journey, with quiet hours (1 minute, 12 h away) and caps that never bite."""
    quiet = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    return harness.write_catalog(root, {
        "settings.yaml": harness.settings_yaml(f"{quiet:%H:%M}", f"{quiet + timedelta(minutes=1):%H:%M}"),
        "segments.yaml": f"segments:\n  {SEGMENT}: {{manual: true}}\n",
        "loyalty.yaml": harness.LOYALTY,
        f"{JOURNEY_ID}.yaml": f"""\
            id: {JOURNEY_ID}
            name: Throughput benchmark
            trigger: {{manual: true}}
            reentry: always
            sending: {{purpose: marketing, on_capped: defer}}
            steps:
              - id: hello
                send_sms: {{text: "{TEXT}"}}
              - wait: 1s
              - if: "customer.sms_consent == 'opted_in'"
                then:
                  - id: points
                    award_points: {{points: {POINTS}, reason: bench}}
                  - id: segments
                    update_segments: {{add: [{SEGMENT}]}}
            """,
    })


# --- databases --------------------------------------------------------------------------


class SqlCounter:
    """Counts transactions and statements on an engine (to compare the two sides' DB work)."""

    def __init__(self, db: Engine) -> None:
        self.transactions = 0
        self.statements = 0
        self._lock = threading.Lock()
        sa_event.listen(db, "begin", self._begin)
        sa_event.listen(db, "before_cursor_execute", self._statement)

    def _begin(self, _connection: Any) -> None:
        with self._lock:
            self.transactions += 1

    def _statement(self, *_args: Any) -> None:
        with self._lock:
            self.statements += 1

    def take(self) -> tuple[int, int]:
        with self._lock:
            counts = (self.transactions, self.statements)
            self.transactions = self.statements = 0
        return counts


def count_effects(db: Engine, ids: list[str]) -> dict[str, int]:
    """What the measured runs wrote: sent messages, ledger rows, segment memberships."""
    with session_scope(db) as session:
        def count(model: Any, *where: Any) -> int:
            return int(session.exec(select(func.count()).select_from(model).where(*where)).one())

        return {
            "messages_sent": count(Message, Message.customer_id.in_(ids), Message.status == "sent"),  # type: ignore[attr-defined]
            "points_rows": count(PointsEntry, PointsEntry.customer_id.in_(ids)),  # type: ignore[attr-defined]
            "memberships": count(SegmentMembership, SegmentMembership.customer_id.in_(ids),  # type: ignore[attr-defined]
                                 SegmentMembership.segment == SEGMENT),
        }


# --- the baseline's activities: the same kind of DB writes, nothing more ------------------


class BaselineActivities:
    def __init__(self, db: Engine, sender: harness.NullSender) -> None:
        self.db = db
        self.sender = sender

    @activity.defn(name=baseline.SEND_SMS)
    def send_sms(self, input: baseline.BaselineInput) -> str:
        """Reserve the message row under its key, call the provider, mark it sent."""
        key = f"{input.run_id}:hello"
        now = datetime.now(UTC)
        with session_scope(self.db) as session:
            row = session.exec(select(Message).where(Message.key == key)).first()
            if row is not None and row.status == "sent":
                return row.id
            customer = get_customer(session, input.customer_id)
            body = (f"Bench Shoes: hi {customer.first_name or 'there'}, thanks for being a member. "
                    "Reply STOP to opt out.")
            row = row or Message(id=uuid.uuid4().hex, key=key, customer_id=customer.id, journey_id="baseline",
                                 step_id="hello", created_at=now)
            row.body, row.encoding, row.segments, row.status = body, "GSM-7", 1, "sending"
            row.sent_at = row.updated_at = now
            row.provider = self.sender.name
            session.add(row)
            message_id, phone = row.id, customer.phone or ""
        receipt = self.sender.send(OutgoingSms(to=phone, body=body, message_key=key))
        with session_scope(self.db) as session:
            stored = session.get(Message, message_id)
            assert stored is not None
            stored.status, stored.provider_message_id = "sent", receipt.provider_message_id
            session.add(stored)
        return message_id

    @activity.defn(name=baseline.READ_CUSTOMER)
    def read_customer(self, input: baseline.BaselineInput) -> bool:
        with session_scope(self.db, readonly=True) as session:
            return get_customer(session, input.customer_id).sms_consent == "opted_in"

    @activity.defn(name=baseline.AWARD_POINTS)
    def award_points(self, input: baseline.BaselineInput) -> int:
        now = datetime.now(UTC)
        key = f"{input.run_id}:points"
        with session_scope(self.db) as session:
            customer = get_customer(session, input.customer_id, for_update=True)
            if session.exec(select(PointsEntry.id).where(PointsEntry.key == key)).first() is None:
                session.add(PointsEntry(key=key, customer_id=customer.id, points=POINTS, reason="bench",
                                        occurred_at=now, expires_at=now + timedelta(days=365), source="baseline"))
                customer.points += POINTS
                session.add(customer)
            return customer.points

    @activity.defn(name=baseline.UPDATE_SEGMENTS)
    def update_segments(self, input: baseline.BaselineInput) -> None:
        with session_scope(self.db) as session:
            if session.get(SegmentMembership, (input.customer_id, SEGMENT)) is None:
                session.add(SegmentMembership(customer_id=input.customer_id, segment=SEGMENT,
                                              entered_at=datetime.now(UTC)))


def baseline_workers(client: Client, db: Engine, sender: harness.NullSender, threads: int = 16) -> list[Worker]:
    """Shaped like build_workers: a workflow worker with the same tuning, and the send on
    its own task queue, both sharing one activity thread pool."""
    acts = BaselineActivities(db, sender)
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="baseline-activity")
    return [
        Worker(client, task_queue=baseline.TASK_QUEUE, workflows=[baseline.BaselineWorkflow],
               activities=[acts.read_customer, acts.award_points, acts.update_segments],
               activity_executor=executor, max_concurrent_workflow_tasks=64, max_cached_workflows=2000),
        Worker(client, task_queue=baseline.SMS_TASK_QUEUE, activities=[acts.send_sms], activity_executor=executor),
    ]


# --- measuring ----------------------------------------------------------------------------


@dataclass
class SideResult:
    name: str
    customers: int
    completed: int = 0
    wall_seconds: float = 0.0
    start_seconds: float = 0.0
    per_second: float = 0.0
    latency_p50: float = 0.0
    latency_p95: float = 0.0
    latency_max: float = 0.0
    events_per_run: float = 0.0
    workflow_tasks_per_run: float = 0.0
    event_types: dict[str, float] = field(default_factory=dict)
    worker_cpu_ms_per_run: float = 0.0
    server_cpu_ms_per_run: float = 0.0
    other_cpu_cores: float = 0.0  # other processes on the machine during the run (noise)
    db_transactions_per_run: float = 0.0
    slowest: list[tuple[str, float]] = field(default_factory=list)  # (workflow id, start-to-result s)
    slowest_gap: str = ""
    sql_statements_per_run: float = 0.0
    rounds: list[float] = field(default_factory=list)  # runs/s of each round
    effects: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: int = 0  # runs that failed to start or to finish
    error_examples: list[str] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)  # SDK warnings (e.g. failed activity attempts)


StartOne = Callable[[str], Awaitable[WorkflowHandle[Any, Any] | None]]


@dataclass
class Batch:
    wall: float  # first start to last result
    start_wall: float  # first start to last start
    latencies: list[float]
    results: list[Any]
    errors: list[str]
    slowest: list[tuple[str, float]] = field(default_factory=list)  # (customer, latency)


async def run_batch(ids: list[str], start_one: StartOne, concurrency: int) -> Batch:
    """Start every run (at most ``concurrency`` starts in flight) and wait for all results."""
    gate = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()
    started_at: list[float] = [t0]
    errors: list[str] = []

    async def one(cid: str) -> tuple[float, float, Any]:
        begun = time.perf_counter()
        try:
            async with gate:
                begun = time.perf_counter()
                handle = await start_one(cid)
                started_at.append(time.perf_counter())
            result = None if handle is None else await handle.result()
        except Exception as err:
            errors.append(f"{cid}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300])
            result = None
        return begun, time.perf_counter(), result

    done = await asyncio.gather(*(one(cid) for cid in ids))
    slowest = sorted(((end - begun, cid) for cid, (begun, end, r) in zip(ids, done, strict=True) if r is not None),
                     reverse=True)[:3]
    return Batch(wall=max(end for _, end, _ in done) - t0, start_wall=max(started_at) - t0,
                 latencies=[end - begun for begun, end, r in done if r is not None],
                 results=[r for _, _, r in done], errors=errors,
                 slowest=[(cid, round(latency, 1)) for latency, cid in slowest])


class ProblemCounter(logging.Handler):
    """Counts the warnings and errors the SDK logs (failed activity attempts, slow
    workflow tasks) instead of printing each; keeps one example of each kind."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        detail = ""
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            detail = f": {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        # One kind per message, whatever run or number it names.
        kind = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}\S*", "<run>", f"{message[:160]}{detail[:100]}")
        kind = re.sub(r"\d+", "N", kind)
        self.counts[kind] += 1
        self.examples.setdefault(kind, record.getMessage()[:300])

    def take(self) -> dict[str, int]:
        counts = dict(self.counts)
        self.counts.clear()
        return counts


PROBLEMS = ProblemCounter()


async def sample_histories(client: Client, workflow_ids: list[str],
                           sample: int) -> tuple[float, float, dict[str, float]]:
    step = max(1, len(workflow_ids) // max(1, sample))
    chosen = workflow_ids[::step][:sample]
    counts: list[int] = []
    tasks: list[int] = []
    types: Counter[str] = Counter()
    for wid in chosen:
        history = await client.get_workflow_handle(wid).fetch_history()
        counts.append(len(history.events))
        names = [_event_type_name(event.event_type) for event in history.events]
        tasks.append(names.count("WorkflowTaskCompleted"))
        types.update(names)
    n = max(1, len(chosen))
    return (statistics.fmean(counts) if counts else 0.0, statistics.fmean(tasks) if tasks else 0.0,
            {name: round(count / n, 2) for name, count in sorted(types.items())})


async def longest_gap(client: Client, wid: str, latency: float) -> str:
    """Where a slow run spent its time: the longest pause in its history, and the time
    outside it (admission and start before, result delivery after)."""
    events = (await client.get_workflow_handle(wid).fetch_history()).events
    times = [event.event_time.ToDatetime() for event in events]
    gap, before = max(((later - earlier).total_seconds(), index + 1)
                      for index, (earlier, later) in enumerate(itertools.pairwise(times)))
    outside = latency - (times[-1] - times[0]).total_seconds()
    return (f"{wid}: {latency:.1f}s; longest pause {gap:.1f}s before event {events[before].event_id} "
            f"{_event_type_name(events[before].event_type)}; {outside:.1f}s outside the history")


def _event_type_name(value: int) -> str:
    from temporalio.api.enums.v1 import EventType

    return "".join(part.capitalize() for part in EventType.Name(value).removeprefix("EVENT_TYPE_").split("_")) \
        .replace("Workflowtask", "WorkflowTask")


async def measure(name: str, ids: list[str], warmup_ids: list[str], start_one: StartOne,
                  wid: Callable[[str], str], args: argparse.Namespace, client: Client,
                  server_pid: int | None, sql: SqlCounter) -> SideResult:
    side = SideResult(name=name, customers=len(ids))
    if warmup_ids:
        warm = await run_batch(warmup_ids, start_one, args.concurrency)
        if warm.errors:
            harness.log(f"  warm-up: {len(warm.errors)} run(s) failed, e.g. {warm.errors[0]}")
    PROBLEMS.take()
    sql.take()

    def cpu_now() -> tuple[float, float, float]:  # this process, the server, the whole machine
        return time.process_time(), harness.process_cpu_seconds(server_pid), harness.machine_busy_seconds()

    cpu0, server0, machine0 = cpu_now()
    batch = await run_batch(ids, start_one, args.concurrency)
    cpu1, server1, machine1 = cpu_now()
    transactions, statements = sql.take()
    if batch.wall:
        other = (machine1 - machine0) - (cpu1 - cpu0) - (server1 - server0)
        side.other_cpu_cores = max(0.0, other) / batch.wall
    side.problems = PROBLEMS.take()
    side.errors = len(batch.errors)
    side.error_examples = batch.errors[:3]
    side.wall_seconds, side.start_seconds = batch.wall, batch.start_wall
    side.completed = sum(1 for r in batch.results if r is not None)
    side.per_second = side.completed / batch.wall if batch.wall else 0.0
    side.rounds = [round(side.per_second, 2)]
    side.latency_p50 = harness.percentile(batch.latencies, 0.5)
    side.latency_p95 = harness.percentile(batch.latencies, 0.95)
    side.latency_max = max(batch.latencies, default=0.0)
    side.slowest = [(wid(cid), latency) for cid, latency in batch.slowest]
    if side.slowest:
        side.slowest_gap = await longest_gap(client, *side.slowest[0])
    side.worker_cpu_ms_per_run = 1000 * (cpu1 - cpu0) / max(1, side.completed)
    side.db_transactions_per_run = transactions / max(1, side.completed)
    side.sql_statements_per_run = statements / max(1, side.completed)
    side.server_cpu_ms_per_run = 1000 * (server1 - server0) / max(1, side.completed)
    side.outcomes = dict(Counter(getattr(r, "outcome", "failed") for r in batch.results))
    completed_ids = [cid for cid, r in zip(ids, batch.results, strict=True) if r is not None]
    side.events_per_run, side.workflow_tasks_per_run, side.event_types = await sample_histories(
        client, [wid(cid) for cid in completed_ids], args.history_sample)
    return side


WorkflowId = Callable[[str], str]
SideSetup = Callable[[Engine, harness.NullSender], tuple[list[Worker], StartOne, WorkflowId]]


async def run_side(name: str, prefix: str, setup: SideSetup, client: Client, args: argparse.Namespace,
                   workdir: Path, server_pid: int | None, tag: str) -> SideResult:
    """One round of one side: a fresh database and customers, the side's workers, the measurement."""
    ids = [f"{prefix}{tag}-{i:05d}" for i in range(args.customers)]
    warmup_ids = [f"{prefix}{tag}w-{i:03d}" for i in range(args.warmup)]
    with harness.fresh_database(args.database_url, workdir, f"{name}{tag}") as db:
        harness.seed_customers(db, ids + warmup_ids)
        sql = SqlCounter(db)
        workers, start_one, wid = setup(db, harness.NullSender())
        async with harness.running(workers):
            side = await measure(name, ids, warmup_ids, start_one, wid, args, client, server_pid, sql)
        side.effects = count_effects(db, ids)
    return side


async def run_engine_side(client: Client, args: argparse.Namespace, workdir: Path,
                          server_pid: int | None, tag: str) -> SideResult:
    catalog = write_journeys(workdir / f"journeys{tag}", datetime.now(UTC))
    pinned = catalog.journey(JOURNEY_ID)

    def setup(db: Engine, sender: harness.NullSender) -> tuple[list[Worker], StartOne, WorkflowId]:
        router = EventRouter(catalog, db, client)

        async def start_one(cid: str) -> WorkflowHandle[Any, Any] | None:
            entered = await router.starter.start(pinned, cid, occasion=f"bench:{cid}", check_trigger=False)
            if not entered:
                return None
            return client.get_workflow_handle(workflow_id(JOURNEY_ID, cid), result_type=JourneyResult)

        workers = build_workers(client, catalog, db, sender, threads=args.threads)
        return workers, start_one, lambda cid: workflow_id(JOURNEY_ID, cid)

    return await run_side("journeys", "j", setup, client, args, workdir, server_pid, tag)


async def run_baseline_side(client: Client, args: argparse.Namespace, workdir: Path,
                            server_pid: int | None, tag: str) -> SideResult:
    def wid(cid: str) -> str:
        return f"baseline/{cid}"

    def setup(db: Engine, sender: harness.NullSender) -> tuple[list[Worker], StartOne, WorkflowId]:
        async def start_one(cid: str) -> WorkflowHandle[Any, Any] | None:
            return await client.start_workflow(
                baseline.WORKFLOW_NAME, baseline.BaselineInput(run_id=uuid.uuid4().hex, customer_id=cid),
                id=wid(cid), task_queue=baseline.TASK_QUEUE, result_type=baseline.BaselineResult,
                request_eager_start=args.baseline_eager,
            )

        return baseline_workers(client, db, sender, threads=args.threads), start_one, wid

    return await run_side("baseline", "b", setup, client, args, workdir, server_pid, tag)


# --- output -------------------------------------------------------------------------------


def runs_per_cpu_second(side: SideResult) -> float:
    """Runs per CPU-second of the system under test (benchmark process + server): a
    throughput that the other processes of a shared machine move much less."""
    cpu_ms = side.worker_cpu_ms_per_run + side.server_cpu_ms_per_run
    return 1000 / cpu_ms if cpu_ms else 0.0


def efficiency_line(engine_side: SideResult, base: SideResult) -> str:
    a, b = runs_per_cpu_second(engine_side), runs_per_cpu_second(base)
    return (f"CPU efficiency (benchmark process + server): journeys {a:.1f}, baseline {b:.1f} runs per "
            f"CPU-second; ratio {a / b if b else 0:.2f}")


def summary_line(engine_side: SideResult, base: SideResult) -> str:
    ratio = engine_side.per_second / base.per_second if base.per_second else 0.0
    return (f"journeys: {engine_side.per_second:.1f}/s  baseline: {base.per_second:.1f}/s  ratio: {ratio:.2f}  "
            f"events/journey: {engine_side.events_per_run:.0f} vs {base.events_per_run:.0f}")


def table(sides: list[SideResult], args: argparse.Namespace) -> str:
    def row(label: str, value: Callable[[SideResult], str]) -> tuple[str, list[str]]:
        return label, [value(side) for side in sides]

    def effects(side: SideResult) -> str:
        return "/".join(str(side.effects.get(k, 0)) for k in ("messages_sent", "points_rows", "memberships"))

    rows = [
        row("customers (completed)", lambda s: f"{s.completed}/{s.customers}"),
        row("wall time, first start to last result (s)", lambda s: f"{s.wall_seconds:.2f}"),
        row("  of which starting all (s)", lambda s: f"{s.start_seconds:.2f}"),
        row("throughput (runs/s)", lambda s: f"{s.per_second:.1f}"),
        row("  per round", lambda s: " ".join(f"{x:.1f}" for x in s.rounds)),
        row("latency p50 / p95 / max (s)",
            lambda s: f"{s.latency_p50:.1f} / {s.latency_p95:.1f} / {s.latency_max:.1f}"),
        row("history events per run", lambda s: f"{s.events_per_run:.1f}"),
        row("workflow tasks per run", lambda s: f"{s.workflow_tasks_per_run:.1f}"),
        row("worker process CPU per run (ms)", lambda s: f"{s.worker_cpu_ms_per_run:.1f}"),
        row("server CPU per run (ms)", lambda s: f"{s.server_cpu_ms_per_run:.1f}"),
        row("runs per CPU-second (process + server)", lambda s: f"{runs_per_cpu_second(s):.1f}"),
        row("DB transactions / SQL statements per run",
            lambda s: f"{s.db_transactions_per_run:.1f} / {s.sql_statements_per_run:.1f}"),
        row("other processes' CPU meanwhile (cores)", lambda s: f"{s.other_cpu_cores:.2f}"),
        row("failed runs", lambda s: str(s.errors)),
        row("SDK warnings (failed attempts etc.)", lambda s: str(sum(s.problems.values()))),
        row("messages / ledger rows / memberships", effects),
    ]
    db = harness.backend_name(args.database_url)
    width = max(len(label) for label, _ in rows)
    out = [f"{harness.CPUS} CPU(s), dev server in memory, database: {db}, concurrency {args.concurrency}, "
           f"warm-up {args.warmup}, rounds {args.rounds}, history sample {args.history_sample}",
           f"{'':<{width}}" + "".join(f"  {side.name:>18}" for side in sides)]
    out += [f"{label:<{width}}" + "".join(f"  {value:>18}" for value in values) for label, values in rows]
    out.append("history events per run, by type:")
    for name in sorted({name for side in sides for name in side.event_types}):
        out.append(f"  {name:<{width - 2}}" + "".join(f"  {side.event_types.get(name, 0):>18g}" for side in sides))
    for side in sides:
        if side.slowest_gap:
            out.append(f"{side.name} slowest run {side.slowest_gap}")
        for kind, count in sorted(side.problems.items(), key=lambda item: -item[1])[:5]:
            out.append(f"{side.name} warning x{count}: {kind}")
        for example in side.error_examples:
            out.append(f"{side.name} failed run: {example}")
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------


def combine(runs: list[SideResult]) -> SideResult:
    """Several rounds of one side as one result: totals for counts and time, so the
    throughput is all runs over all wall time; per-run figures weighted by runs."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    total = SideResult(name=first.name, customers=sum(r.customers for r in runs))
    total.completed = sum(r.completed for r in runs)
    total.wall_seconds = sum(r.wall_seconds for r in runs)
    total.start_seconds = sum(r.start_seconds for r in runs)
    total.per_second = total.completed / total.wall_seconds if total.wall_seconds else 0.0
    total.rounds = [x for r in runs for x in r.rounds]

    def weighted(attr: str) -> float:
        return sum(getattr(r, attr) * r.completed for r in runs) / max(1, total.completed)

    for attr in ("latency_p50", "latency_p95", "events_per_run", "workflow_tasks_per_run",
                 "worker_cpu_ms_per_run", "server_cpu_ms_per_run", "db_transactions_per_run",
                 "sql_statements_per_run"):
        setattr(total, attr, weighted(attr))
    total.latency_max = max(r.latency_max for r in runs)
    total.slowest = sorted((x for r in runs for x in r.slowest), key=lambda x: -x[1])[:3]
    total.slowest_gap = max(runs, key=lambda r: r.latency_max).slowest_gap
    total.other_cpu_cores = sum(r.other_cpu_cores * r.wall_seconds for r in runs) / max(1e-9, total.wall_seconds)
    names = {name for r in runs for name in r.event_types}
    total.event_types = {name: round(sum(r.event_types.get(name, 0) for r in runs) / len(runs), 2) for name in names}
    for r in runs:
        for key, value in r.effects.items():
            total.effects[key] = total.effects.get(key, 0) + value
        for key, value in r.outcomes.items():
            total.outcomes[key] = total.outcomes.get(key, 0) + value
        for key, value in r.problems.items():
            total.problems[key] = total.problems.get(key, 0) + value
        total.errors += r.errors
        total.error_examples += r.error_examples
    total.error_examples = total.error_examples[:3]
    return total


def forwarding_runtime() -> Runtime:
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))))


async def bench(args: argparse.Namespace, server: harness.DevServer, workdir: Path) -> dict[str, SideResult]:
    await server.ready()
    # processes.temporal.connect, with the SDK core's own warnings (e.g. "workflow task
    # duration exceeded 5 seconds") forwarded to Python logging, where they are counted,
    # instead of printed on stdout (which --json keeps for the results).
    client = await Client.connect(server.address, namespace="default", data_converter=pydantic_data_converter,
                                  runtime=forwarding_runtime())
    harness.log(f"Temporal dev server up at {server.address}; {args.customers} customers per side and round")
    pid = server.process.pid
    runners = {"journeys": run_engine_side, "baseline": run_baseline_side}
    sides = [args.only] if args.only else ["journeys", "baseline"]
    if args.baseline_first:
        sides.reverse()
    results: dict[str, list[SideResult]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        # Alternate the order (A B, B A, ...): a slow drift of the machine's load (other
        # processes, server state) then weighs on both sides alike.
        for name in sides if round_ % 2 == 0 else list(reversed(sides)):
            harness.log(f"round {round_ + 1}/{args.rounds}: {name} ...")
            side = await runners[name](client, args, workdir, pid, str(round_))
            results[name].append(side)
            harness.log(f"  {name}: {side.per_second:.1f}/s ({side.completed} in {side.wall_seconds:.1f}s; "
                        f"other processes used {side.other_cpu_cores:.2f} cores)")
    return {name: combine(runs) for name, runs in results.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=500, help="runs per side (default 500)")
    harness.add_database_url(parser)
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight at once (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured runs per side first (default 10)")
    parser.add_argument("--history-sample", type=int, default=20, help="runs whose history is counted")
    parser.add_argument("--threads", type=int, default=16,
                        help="activity threads per side (build_workers' default: 16)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat both sides, alternating their order (default 1)")
    parser.add_argument("--only", choices=["journeys", "baseline"], help="run one side only (for profiling)")
    parser.add_argument("--baseline-first", action="store_true", help="run the baseline before the engine")
    parser.add_argument("--baseline-eager", action="store_true",
                        help="start the baseline with request_eager_start, like the engine does")
    parser.add_argument("--timeout", type=float, default=1200,
                        help="give up (and stop everything) after this many seconds (default 1200)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger().addHandler(PROBLEMS)
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        workdir = Path(tmp)
        server = harness.DevServer(workdir)

        def abort(code: int, why: str) -> None:
            # Straight out, from a signal handler or the watchdog: a hung worker shutdown
            # must not keep the server (or the databases) alive.
            harness.log(f"{why}: stopping the dev server")
            server.stop()
            harness.drop_leftover_databases()
            shutil.rmtree(tmp, ignore_errors=True)
            harness.leave(code)

        # Signals go to a thread of their own (sigwait), not to Python handlers: those
        # only run when the main thread runs Python, and an event loop stuck in C (say,
        # on a SQLite connection mutex) would never stop the server. The server was
        # started before the mask, so it still gets its signals.
        stops = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)

        def on_signal() -> None:
            number = signal.sigwait(stops)
            abort(128 + number, "interrupted" if number == signal.SIGINT else "terminated")

        threading.Thread(target=on_signal, name="bench-signals", daemon=True).start()
        watchdog = threading.Timer(args.timeout, abort, args=(124, f"no result after {args.timeout:.0f}s"))
        watchdog.daemon = True
        watchdog.start()
        try:
            results = asyncio.run(bench(args, server, workdir))
        except Exception as err:
            import traceback

            traceback.print_exc()
            tail = server.log_tail()
            harness.log(f"benchmark failed: {err!r}" + (f"\nlast lines of the server log:\n{tail}" if tail else ""))
            return 1
        finally:
            watchdog.cancel()
            server.stop()
    engine_side, base = results.get("journeys"), results.get("baseline")
    ratio = engine_side.per_second / base.per_second if engine_side and base and base.per_second else None
    if args.json:
        print(json.dumps({**{name: asdict(side) for name, side in results.items()},
                          "ratio": round(ratio, 3) if ratio is not None else None,
                          "cpu_efficiency_ratio": round(runs_per_cpu_second(engine_side) / runs_per_cpu_second(base), 3)
                          if engine_side and base and runs_per_cpu_second(base) else None,
                          "database": "postgresql" if args.database_url else "sqlite", "cpus": harness.CPUS,
                          "concurrency": args.concurrency, "rounds": args.rounds}, indent=2))
    else:
        print(table(list(results.values()), args))
        if engine_side and base:
            print(efficiency_line(engine_side, base))
            print(summary_line(engine_side, base))
    harness.print_load_average(to_stderr=args.json)
    if ratio is not None:
        harness.print_headline(f"engine / hand-written throughput: ratio {ratio:.2f}", to_stderr=args.json)
    ok = all(side.completed == side.customers for side in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    harness.leave(main())
