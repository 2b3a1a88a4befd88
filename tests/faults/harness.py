"""The real system as processes, faults done to it, and the verdict on what it did.

A `System` runs a Temporal dev server on a persistent SQLite store, `journeys worker`
and `journeys api` as their own processes, the real Twilio SDK sending to the fake
provider (tests/faults/fake_provider.py, in this process: it survives whatever is done
to the engine's processes), and a fresh database per scenario. Every piece can be killed
with SIGKILL and started again on the same state.

The journey of every scenario is `FAULT_JOURNEY`: text A, a wait, 10 points, text B,
transactional (quiet hours and caps never apply, so no result depends on the time of
day). Each text names its step and the customer, so the provider's log alone says who
got what. `System.verdict()` then checks three records against each other:

- the provider's log: every customer got A and B exactly once;
- Temporal: exactly one run per customer, none still running once settled;
- the database: one enrollment per customer that agrees with Temporal (never `ended`
  while the run runs, never `active` without a run), every message `sent` with the SID the
  provider holds, 10 points per customer, once.

Shared by tests/faults/test_*.py (10-20 customers) and bench/faults.py (hundreds).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine, make_url
from temporalio.client import Client, WorkflowExecutionStatus

from language.durations import parse_duration
from processes.dev import DevError, start_dev_server, wait_for_server
from processes.temporal import connect_to
from store.db import normalize_url, open_database, session_scope
from store.migrate import upgrade
from store.tables import Customer
from tests.faults.fake_provider import FakeProvider, Faults

BIN = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("JOURNEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ACCOUNT_SID = "AC" + "0" * 32
SERVICE_SID = "MG" + "1" * 32
API_TOKEN = "faults-token"
JOURNEY = "faults"
STEPS = ("A", "B")
POINTS = 10
TEXT = re.compile(r"^Fault run (?P<step>[AB]) for (?P<customer>\S+)$")

FAULT_JOURNEY = """
id: faults
name: Fault run
description: Two texts around a wait and a points award, for the fault-injection scenarios.
trigger: {event: fault_start}
reentry: never
sending: {purpose: transactional}
steps:
  - id: first
    send_sms: {text: "Fault run A for {{ customer.id }}"}
  - wait: WAIT
  - id: bonus
    award_points: {points: 10, reason: "Fault run bonus"}
  - id: second
    send_sms: {text: "Fault run B for {{ customer.id }}"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports, below the kernel's ephemeral range
    (32768 up, Linux's default): a port there is never taken by an outgoing connection
    meanwhile, as the neighbours of a port the kernel picked can be (a worker pool binds
    its children's endpoints at the ports after its own)."""
    for _ in range(200):
        first = random.randrange(20_000, 32_768 - size)
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + size):
                    probe = held.enter_context(socket.socket())
                    probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {size} consecutive free ports between 20000 and 32768")


def _die_with_parent() -> None:
    """In a child, before exec: SIGKILL when the test process dies, so an aborted run
    leaves no worker behind (Linux; prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def kill9(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL to the process and its group: no clean-up, no graceful shutdown."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        kill9(process)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- databases ------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(backend: str, workdir: Path, admin_url: str = POSTGRES_ADMIN_URL) -> Any:
    """A migrated, empty database URL for one scenario: a SQLite file in ``workdir``, or a
    PostgreSQL database created on ``admin_url``'s server and dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'journeys.db'}"
        db = open_database(url)
        upgrade(db)
        db.dispose()
        yield url
        return
    admin = make_url(normalize_url(admin_url)).set(drivername="postgresql")
    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    db = open_database(url)
    upgrade(db)
    db.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def terminate_connections(database_url: str) -> int:
    """Drop every other session on the scenario's PostgreSQL database (what a failover
    or a proxy restart does); returns how many were terminated."""
    dsn = make_url(normalize_url(database_url)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return sum(1 for (done,) in rows if done)


# --- the verdict ----------------------------------------------------------------------


@dataclass
class Verdict:
    """What the three records say, and every way they fall short of "nothing lost"."""

    customers: int
    texts_expected: int = 0
    delivered_once: int = 0
    duplicates: list[str] = field(default_factory=list)  # "c-007 B x2"
    lost: list[str] = field(default_factory=list)  # "c-007 B"
    journeys_lost: list[str] = field(default_factory=list)
    journeys_doubled: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)
    points_doubled: list[str] = field(default_factory=list)
    points_missing: list[str] = field(default_factory=list)
    records_wrong: list[str] = field(default_factory=list)  # the database disagrees with the provider/Temporal
    notes: list[str] = field(default_factory=list)  # facts for the report, not failures

    def problems(self) -> list[str]:
        found = []
        for label, items in (("texts sent twice", self.duplicates), ("texts lost", self.lost),
                             ("journeys never run", self.journeys_lost),
                             ("journeys run more than once", self.journeys_doubled),
                             ("runs still running after the deadline", self.still_running),
                             ("customers awarded points more than once", self.points_doubled),
                             ("customers missing their points", self.points_missing),
                             ("records that disagree with the provider or Temporal", self.records_wrong)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items) - 12} more)" if len(items) > 12 else "")
                found.append(f"{len(items)} {label}: {shown}")
        return found

    def report(self) -> str:
        lines = self.problems() or ["nothing lost, nothing doubled"]
        return "\n".join(lines + [f"({note})" for note in self.notes])


# --- the system -----------------------------------------------------------------------


class System:
    """One scenario's processes and state, under ``workdir``."""

    def __init__(self, workdir: Path, database_url: str, provider: FakeProvider, *, customers: int,
                 wait: str = "5s", sms_per_second: float | None = None, http_timeout: float = 2.0,
                 settle_after: float = 5.0, prefix: str = "c") -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.provider = provider
        self.customer_ids = [f"{prefix}-{n:04d}" for n in range(customers)]
        self.temporal_port, self.ui_port, self.api_port = free_port(), free_port(), free_port()
        self.temporal_address = f"127.0.0.1:{self.temporal_port}"
        self.temporal_state = workdir / "temporal" / "state.db"
        self.temporal: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.api: subprocess.Popen[bytes] | None = None
        self.journeys_dir = workdir / "journeys"
        self.wait_seconds = parse_duration(wait).total_seconds()
        self._write_journeys(wait)
        self.env = {
            "TEMPORAL_ADDRESS": self.temporal_address, "JOURNEYS_DATABASE_URL": database_url,
            "JOURNEYS_DIR": str(self.journeys_dir), "JOURNEYS_SMS_SENDER": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "faults-secret",
            "TWILIO_API_BASE_URL": provider.url, "TWILIO_HTTP_TIMEOUT": str(http_timeout),
            "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, "JOURNEYS_API_TOKEN": API_TOKEN,
            "JOURNEYS_PUBLIC_URL": self.api_url,
            # How long an unconfirmed text must be missing from the provider's list before it
            # is sent again: the fake lists a message the moment it exists, so seconds do.
            "JOURNEYS_SETTLE_AFTER_SECONDS": str(settle_after),
        }
        if sms_per_second:
            self.env["JOURNEYS_SMS_PER_SECOND"] = str(sms_per_second)
        self.db: Engine = open_database(database_url)
        self.events_accepted = 0  # by the API, so far: scenarios strike at a chosen point
        self.notes: list[str] = []  # what a scenario did, for the verdict's notes
        self._client: Client | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _write_journeys(self, wait: str) -> None:
        self.journeys_dir.mkdir(parents=True, exist_ok=True)
        (self.journeys_dir / "settings.yaml").write_text(textwrap.dedent(f"""\
            brand: Fault Shoes
            sender:
              messaging_service_sid: "${{TWILIO_MESSAGING_SERVICE_SID}}"
            default_country: US
            default_timezone: UTC
            quiet_hours: {{start: "21:00", end: "08:00"}}
            frequency_caps: [{{max: 1000, per: 1h}}]
            links: {{base_url: "{self.api_url}"}}
            """))
        (self.journeys_dir / "loyalty.yaml").write_text("points: {per_currency_unit: 1, expire_after: 365d}\n")
        (self.journeys_dir / "faults.yaml").write_text(textwrap.dedent(FAULT_JOURNEY).replace("WAIT", wait))

    # --- processes ---------------------------------------------------------------------

    def _spawn(self, args: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%H:%M:%S')} start {' '.join(args)}\n".encode())
            out.flush()
            return subprocess.Popen([str(BIN / "journeys"), *args], env={**os.environ, **self.env, **(extra_env or {})},
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent)

    async def start_temporal(self) -> None:
        """The dev server on the same port and store every time: a restart finds every run.
        The first start takes other free ports if the server cannot bind its own (another
        process on the shared machine may take a port between our pick and its bind)."""
        log = self.workdir / "temporal.log"
        for attempt in range(3):
            self.temporal = start_dev_server(self.temporal_state.parent, log, port=self.temporal_port,
                                             ui_port=self.ui_port, state_file=self.temporal_state)
            try:
                await wait_for_server(self.temporal_address, self.temporal)
                break
            except DevError:
                if attempt == 2:
                    raise RuntimeError(f"the Temporal dev server would not start:\n{tail(log)}") from None
                await asyncio.sleep(1)
                if not self.workers and self.api is None:  # nobody knows the address yet
                    self.temporal_port, self.ui_port = free_port(), free_port()
                    self.temporal_address = f"127.0.0.1:{self.temporal_port}"
                    self.env["TEMPORAL_ADDRESS"] = self.temporal_address
        self._client = None

    def kill_temporal(self) -> None:
        kill9(self.temporal)

    async def client(self) -> Client:
        if self._client is None:
            self._client = await connect_to(self.temporal_address, "default")
        return self._client

    async def start_worker(self, name: str = "worker", timeout: float = 90, *, processes: int = 1,
                           extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """`journeys worker` (``--processes N`` for more than one), once every process
        polls (its log says so)."""
        log = self.workdir / f"{name}.log"
        start = log.stat().st_size if log.exists() else 0
        args = ["worker"] if processes == 1 else ["worker", "--processes", str(processes)]
        process = self._spawn(args, log, extra_env)
        self.workers[name] = process
        deadline = time.monotonic() + timeout
        while log.read_text(errors="replace")[start:].count("worker running") < processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start in {timeout:.0f} s:\n{tail(log)}")
            await asyncio.sleep(0.2)
        return process

    def kill_worker(self, name: str = "worker") -> None:
        kill9(self.workers.get(name))

    async def start_api(self, timeout: float = 90) -> None:
        log = self.workdir / "api.log"
        self.api = self._spawn(["api", "--port", str(self.api_port)], log)
        deadline = time.monotonic() + timeout
        while True:
            if self.api.poll() is not None:
                raise RuntimeError(f"the API exited ({self.api.returncode}):\n{tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=2) as http:
                    if (await http.get(f"{self.api_url}/healthz")).status_code < 500:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer in {timeout:.0f} s:\n{tail(log)}")
            await asyncio.sleep(0.2)

    def kill_api(self) -> None:
        kill9(self.api)

    async def start(self, *, worker: bool = True) -> None:
        """Temporal, the customers, the API and (unless told not to) one worker."""
        await self.start_temporal()
        self.seed_customers()
        await asyncio.gather(self.start_api(), *([self.start_worker()] if worker else []))

    def close(self) -> None:
        for process in (self.api, *self.workers.values()):
            stop(process)
        stop(self.temporal)
        self.db.dispose()

    # --- data ------------------------------------------------------------------------

    def seed_customers(self) -> None:
        """Opted-in customers with distinct phones, straight into the database."""
        at = datetime.now(UTC)
        rows = [{"id": cid, "phone": f"+1555{n:07d}", "phone_status": "ok", "first_name": "Ann",
                 "sms_consent": "opted_in", "attributes": {}, "orders_count": 0, "total_spent": 0.0, "points": 0,
                 "created_at": at, "updated_at": at} for n, cid in enumerate(self.customer_ids)]
        with session_scope(self.db) as session:
            session.execute(insert(Customer), rows)

    def events(self) -> list[dict[str, Any]]:
        return [{"id": f"start-{cid}", "type": "fault_start", "customer_id": cid} for cid in self.customer_ids]

    async def post_events(self, events: list[dict[str, Any]] | None = None, *, batch: int = 5,
                          deadline: float = 120, pause: float = 0.0) -> int:
        """Send the events as a shop service would: in small batches, and a request that
        fails (refused, reset, 5xx, timed out) is sent again with the same event ids until
        it is accepted. Returns how many requests had to be retried."""
        events = self.events() if events is None else events
        retries = 0
        end = time.monotonic() + deadline
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10,
                                     headers={"Authorization": f"Bearer {API_TOKEN}"}) as http:
            for start in range(0, len(events), batch):
                chunk = events[start:start + batch]
                while True:
                    try:
                        answer = await http.post("/events", json=chunk)
                        if answer.status_code == 202:
                            self.events_accepted += len(chunk)
                            break
                        if answer.status_code < 500:
                            raise AssertionError(f"POST /events refused: {answer.status_code} {answer.text}")
                    except httpx.TransportError:
                        pass
                    retries += 1
                    if time.monotonic() > end:
                        raise AssertionError(f"POST /events not accepted within {deadline:.0f} s")
                    await asyncio.sleep(0.3)
                if pause:
                    await asyncio.sleep(pause)
        return retries

    # --- watching ----------------------------------------------------------------------

    def texts(self) -> list[tuple[str, str]]:
        """(customer, step) of every text the provider created for this scenario."""
        found = []
        for message in self.provider.log:
            matched = TEXT.match(message.body)
            if matched:
                found.append((matched["customer"], matched["step"]))
        return found

    async def until_texts(self, count: int, timeout: float = 60) -> None:
        """Until the provider holds at least ``count`` texts (the moment to strike)."""
        deadline = time.monotonic() + timeout
        while len(self.texts()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.texts())} of {count} texts within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    def sent_in_database(self, step_id: str) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM messages WHERE journey_id = :j AND step_id = :s "
                                         "AND status = 'sent'"), {"j": JOURNEY, "s": step_id}).scalar_one())

    async def until_sent_in_database(self, step_id: str, count: int, timeout: float = 60) -> None:
        """Until the database records ``count`` texts of a step as sent."""
        deadline = time.monotonic() + timeout
        while self.sent_in_database(step_id) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.sent_in_database(step_id)} of {count} {step_id} texts recorded "
                                     f"sent within {timeout:.0f} s")
            await asyncio.sleep(0.1)

    async def runs(self) -> list[tuple[str, WorkflowExecutionStatus | None]]:
        """(workflow id, status) of every run of the fault journey Temporal knows."""
        client = await self.client()
        return [(w.id, w.status) async for w in
                client.list_workflows(f'WorkflowType = "Journey" AND JourneyId = "{JOURNEY}"')]

    async def settle(self, timeout: float = 120) -> bool:
        """Until every customer's run has closed and the provider's log stands still
        (or the deadline: a lost journey never closes). True if it settled."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            try:
                runs = await self.runs()
            except Exception:  # Temporal restarting: ask again
                self._client = None
                await asyncio.sleep(1)
                continue
            closed = {wid for wid, status in runs if status != WorkflowExecutionStatus.RUNNING}
            running = [wid for wid, status in runs if status == WorkflowExecutionStatus.RUNNING]
            texts = len(self.provider.log)
            if not running and len(closed) >= len(self.customer_ids) and texts == last:
                return True
            last = texts
            await asyncio.sleep(1)
        return False

    # --- the verdict ---------------------------------------------------------------------

    async def verdict(self) -> Verdict:
        verdict = Verdict(customers=len(self.customer_ids), notes=list(self.notes))
        verdict.texts_expected = len(self.customer_ids) * len(STEPS)
        ours = set(self.customer_ids)
        # The provider's log: who got what.
        got = Counter(t for t in self.texts() if t[0] in ours)
        for cid in self.customer_ids:
            for step in STEPS:
                n = got[(cid, step)]
                if n == 0:
                    verdict.lost.append(f"{cid} {step}")
                elif n == 1:
                    verdict.delivered_once += 1
                else:
                    verdict.duplicates.append(f"{cid} {step} x{n}")
        # Temporal: one run per customer, closed.
        runs_of: dict[str, list[WorkflowExecutionStatus | None]] = defaultdict(list)
        for wid, status in await self.runs():
            runs_of[wid.rsplit("/", 1)[-1]].append(status)
        for cid in self.customer_ids:
            statuses = runs_of.get(cid, [])
            if not statuses:
                verdict.journeys_lost.append(cid)
            elif len(statuses) > 1:
                verdict.journeys_doubled.append(f"{cid} x{len(statuses)}")
            if WorkflowExecutionStatus.RUNNING in statuses:
                verdict.still_running.append(cid)
            elif statuses and any(s != WorkflowExecutionStatus.COMPLETED for s in statuses):
                verdict.records_wrong.append(f"{cid}: run ended {'/'.join(s.name for s in statuses if s)}")
        self._check_database(verdict, runs_of)
        return verdict

    def _check_database(self, verdict: Verdict, runs_of: dict[str, list[WorkflowExecutionStatus | None]]) -> None:
        by_sid = {m.sid: m for m in self.provider.log}
        by_message_id = {m.message_id: m for m in self.provider.log if m.message_id}
        with self.db.connect() as conn:
            enrollments = conn.execute(text(
                "SELECT customer_id, status, outcome FROM enrollments WHERE journey_id = :j"), {"j": JOURNEY}).all()
            messages = conn.execute(text(
                "SELECT id, customer_id, step_id, status, reason, provider_message_id FROM messages "
                "WHERE journey_id = :j"), {"j": JOURNEY}).all()
            points = conn.execute(text(
                "SELECT customer_id, COUNT(*), SUM(points) FROM points_ledger GROUP BY customer_id")).all()
        rows_of: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for cid, status, outcome in enrollments:
            rows_of[cid].append((status, outcome))
        for cid in self.customer_ids:
            rows = rows_of.get(cid, [])
            running = WorkflowExecutionStatus.RUNNING in runs_of.get(cid, [])
            if len(rows) != 1:
                verdict.records_wrong.append(f"{cid}: {len(rows)} enrollments {rows}")
            for status, outcome in rows:
                if status == "ended" and running:
                    verdict.records_wrong.append(f"{cid}: enrollment ended/{outcome} while its run runs")
                if status == "active" and not running:
                    verdict.records_wrong.append(f"{cid}: enrollment active without a running run")
                if outcome == "lost":
                    verdict.records_wrong.append(f"{cid}: enrollment marked lost")
        statuses = Counter(status for *_, status, _, _ in messages)
        verdict.notes.append("messages: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
        for message_id, cid, step_id, status, reason, sid in messages:
            held = by_message_id.get(message_id)
            if status in ("sent", "delivered"):
                if sid not in by_sid:
                    verdict.records_wrong.append(f"{cid} {step_id}: {status} as {sid}, unknown to the provider")
                elif by_sid[sid].message_id != message_id:
                    verdict.records_wrong.append(f"{cid} {step_id}: {sid} belongs to another message")
            else:
                at_provider = "the provider holds it" if held else "the provider never got it"
                verdict.records_wrong.append(f"{cid} {step_id}: {status}/{reason} ({at_provider})")
        awarded = {cid: (count, total) for cid, count, total in points}
        for cid in self.customer_ids:
            count, total = awarded.get(cid, (0, 0))
            if count > 1 or (total or 0) > POINTS:
                verdict.points_doubled.append(f"{cid}: {count} awards, {total} points")
            elif (count, total) != (1, POINTS):
                verdict.points_missing.append(f"{cid}: {count} awards, {total or 0} points")
        injected = {k: v for k, v in self.provider.status()["injected"].items() if v}
        if injected:
            verdict.notes.append("provider faults injected: " + ", ".join(f"{k} {v}" for k, v in injected.items()))

    # --- sends per worker -----------------------------------------------------------------

    async def send_identities(self) -> Counter[str]:
        """Which worker identity (pid@host) ran each successful send, from the runs' histories."""
        client = await self.client()
        identities: Counter[str] = Counter()
        for wid, _ in await self.runs():
            history = await client.get_workflow_handle(wid).fetch_history()
            scheduled: dict[int, str] = {}
            started: dict[int, str] = {}
            for event in history.events:
                if event.HasField("activity_task_scheduled_event_attributes"):
                    scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
                elif event.HasField("activity_task_started_event_attributes"):
                    began = event.activity_task_started_event_attributes
                    started[began.scheduled_event_id] = began.identity
            for event_id, name in scheduled.items():
                if name.endswith("send_sms") and event_id in started:
                    identities[started[event_id]] += 1
        return identities


def worker_identity(process: subprocess.Popen[bytes]) -> str:
    return f"{process.pid}@{socket.gethostname()}"


def busiest_window(stamps: list[datetime], seconds: float) -> int:
    """The most creates the provider saw within any ``seconds``-long window."""
    ordered = sorted(s.timestamp() for s in stamps)
    best, left = 0, 0
    for right, at in enumerate(ordered):
        while at - ordered[left] >= seconds:
            left += 1
        best = max(best, right - left + 1)
    return best


# --- scenarios ------------------------------------------------------------------------

Scenario = Callable[[System], Awaitable[None]]


@contextlib.asynccontextmanager
async def system(workdir: Path, backend: str, *, customers: int, faults: Faults | None = None,
                 admin_url: str = POSTGRES_ADMIN_URL, **options: Any) -> AsyncIterator[System]:
    """A System on a fresh database, stopped (everything) at the end."""
    with fresh_database(backend, workdir, admin_url) as url, FakeProvider(faults=faults) as provider:
        sut = System(workdir, url, provider, customers=customers, **options)
        try:
            yield sut
        finally:
            sut.close()


async def provider_faults(sut: System) -> None:
    """10% 500 before create, 10% 500 after create, 10% 429, 5% accept-then-hang."""
    sut.provider.set_faults(fail_before=0.10, fail_after=0.10, rate_limit=0.10, hang=0.05, hang_seconds=4, seed=8)
    await sut.start()
    await sut.post_events()


async def worker_kill_backlog(sut: System) -> None:
    """The events are in before any worker runs: the worker meets a backlog of sends and
    is killed in the middle of it, then started again."""
    await sut.start(worker=False)
    await sut.post_events()
    await sut.start_worker()
    await sut.until_texts(max(1, len(sut.customer_ids) // 3))
    sut.kill_worker()
    await asyncio.sleep(1)
    await sut.start_worker()


async def worker_kill_waits(sut: System) -> None:
    """Killed while every run waits between its texts (every first text recorded sent: no
    send in flight, the backlog scenario covers that), started again after the waits are due."""
    await sut.start()
    await sut.post_events()
    await sut.until_sent_in_database("first", len(sut.customer_ids))
    sut.kill_worker()
    await asyncio.sleep(sut.wait_seconds + 1)  # the timers fire with no worker
    await sut.start_worker()


async def temporal_kill(sut: System) -> None:
    """The Temporal dev server killed mid-run and started again on the same store and port."""
    await sut.start()
    await sut.post_events()
    await sut.until_texts(max(1, len(sut.customer_ids) // 2))
    sut.kill_temporal()
    await asyncio.sleep(2)
    await sut.start_temporal()


async def api_kill(sut: System) -> None:
    """The API killed (three times) while a client streams events one per request; the
    client retries what failed with the same ids (as a shop service would) until the
    restarted API accepts."""
    await sut.start()
    total = len(sut.customer_ids)

    async def strike() -> None:
        for quarter in (1, 2, 3):
            while sut.events_accepted < total * quarter // 4:
                await asyncio.sleep(0.005)
            sut.kill_api()
            await asyncio.sleep(0.5)
            await sut.start_api()

    striker = asyncio.create_task(strike())
    sut.notes.append(f"POST /events retried {await sut.post_events(batch=1)} times")
    await striker


async def postgres_connections_dropped(sut: System) -> None:
    """Every connection to the database terminated, again and again, while runs send and wait."""
    await sut.start()
    sending = asyncio.create_task(sut.post_events())
    for _ in range(8):
        await asyncio.sleep(1.0)
        await asyncio.to_thread(terminate_connections, sut.database_url)
    await sending


async def two_workers(sut: System) -> None:
    """Two worker processes on the same task queues, from the start."""
    await sut.start(worker=False)
    await sut.start_worker("worker-1")
    await sut.start_worker("worker-2")
    await sut.post_events()


SCENARIOS: dict[str, Scenario] = {
    "provider_faults": provider_faults,
    "worker_kill_backlog": worker_kill_backlog,
    "worker_kill_waits": worker_kill_waits,
    "temporal_kill": temporal_kill,
    "api_kill": api_kill,
    "postgres_connections": postgres_connections_dropped,
    "two_workers": two_workers,
}


async def run_scenario(name: str, workdir: Path, backend: str, *, customers: int, settle: float = 120,
                       admin_url: str = POSTGRES_ADMIN_URL, **options: Any) -> tuple[Verdict, System]:
    """Run one scenario to its end and judge it. The System is returned stopped, for
    scenario-specific checks on what it recorded (the provider's log stays readable)."""
    async with system(workdir, backend, customers=customers, admin_url=admin_url, **options) as sut:
        await SCENARIOS[name](sut)
        settled = await sut.settle(settle)
        verdict = await sut.verdict()
        if not settled:
            verdict.notes.append(f"did not settle within {settle:.0f} s")
        if name == "two_workers":
            identities = await sut.send_identities()
            names = {worker_identity(p): n for n, p in sut.workers.items()}
            verdict.notes.append("sends per worker: " + ", ".join(
                f"{names.get(i, i)} {n}" for i, n in sorted(identities.items())))
            sut.identities = {names.get(i, i): n for i, n in identities.items()}  # type: ignore[attr-defined]
    return verdict, sut
