"""Events benchmark: what POST /events takes per second, and how soon a journey waiting
for a purchase reacts to one.

Starts, on free ports and in a temporary directory, a Temporal dev server
(``processes.dev.start_dev_server``), the HTTP service as its own process (``journeys api``,
as deployed) and the journey workers in this process (``processes.workers.build_workers``
with a sender that only notes the moment it is handed each SMS), all on a fresh
database (a SQLite file, or a PostgreSQL database created for the run and dropped
after). Then:

* throughput: N events of a type no journey reacts to (``page_viewed``, for existing
  customers), posted one per request and then in batches, with a bounded number of
  requests in flight; accepted events/s is N over the wall time from the first request
  to the last response (every response must be a 202 with nothing a duplicate);
* reaction: K customers each in a journey waiting on ``wait_for: {event: purchase}``
  whose next step sends an SMS. A purchase is posted for each; per customer, the time
  from just before the POST to (1) the workflow observing the event (the moment
  the journey's timeline records it: the start of the workflow task that handled the
  signal, on the server's clock, which is this machine's) and (2) the SMS being handed
  to the sender. Run twice: one purchase in flight, then several; a purchase is in flight
  from its POST until its text is handed (``--burst`` adds a third run: every purchase
  posted at once, however far the reactions lag behind). The histories
  of a sample of runs split each reaction into stages (API, waiting for a worker,
  the workflow task, the SMS activity's queue and run) and show timed-out tasks.

Everything started is stopped at the end, also on error or Ctrl-C.

    .venv/bin/python -m bench.events [--events 2000] [--customers 200] [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/events.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import Client

from bench import harness
from bench.raw_http import KeepAliveClient
from language.catalog import Catalog
from messaging.senders.base import OutgoingSms, ProviderMessage, ProviderReceipt
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import session_scope
from store.tables import Enrollment
from workflows.io import JourneyResult, workflow_id

TOKEN = "bench-token"
JOURNEY_ID = "reaction"
WAIT_STEP = "wait_purchase"
ENTER_EVENT = "bench_enter"
QUIET_EVENT = "page_viewed"  # no journey starts on it or waits for it


# --- the journeys directory -------------------------------------------------------------


def write_journeys(root: Path) -> Catalog:
    """One journey: entered on `bench_enter`, waits for a purchase, then texts. No quiet
    hours and caps that never bite, so the text goes out at once."""
    return harness.write_catalog(root, {
        "settings.yaml": harness.settings_yaml("00:00", "00:00", 'links: {base_url: "http://127.0.0.1"}'),
        "segments.yaml": "segments:\n  bench: {manual: true}\n",
        "loyalty.yaml": harness.LOYALTY,
        f"{JOURNEY_ID}.yaml": f"""\
            id: {JOURNEY_ID}
            name: Reaction to a purchase
            trigger: {{event: {ENTER_EVENT}}}
            reentry: always
            steps:
              - id: {WAIT_STEP}
                wait_for: {{event: purchase, timeout: 1h}}
                then:
                  - id: thanks
                    send_sms: {{text: "Bench Shoes: thanks for your order! Reply STOP to opt out."}}
                else:
                  - exit: no_purchase
            """,
    })


# --- a sender that notes when it is handed each text --------------------------------------


class TimingSender:
    name = "bench"

    def __init__(self) -> None:
        self.handed: dict[str, float] = {}  # phone -> perf_counter() of the first send
        self.count = 0
        self._lock = threading.Lock()
        self.changed: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._awaited: dict[str, asyncio.Event] = {}  # phone -> set once its text is handed (event loop only)

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        at = time.perf_counter()
        with self._lock:
            self.count += 1
            self.handed.setdefault(sms.to, at)
            receipt = ProviderReceipt(provider_message_id=f"SM{self.count:032d}", status="queued")
        if self.loop is not None and self.changed is not None:
            self.loop.call_soon_threadsafe(self._arrived, sms.to)
        return receipt

    def _arrived(self, phone: str) -> None:
        assert self.changed is not None
        self.changed.set()
        if awaited := self._awaited.get(phone):
            awaited.set()

    async def handed_to(self, phone: str, timeout: float) -> bool:
        """Wait (in the event loop) until a text to ``phone`` is handed; False on timeout."""
        if phone in self.handed:
            return True
        awaited = self._awaited.setdefault(phone, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(awaited.wait(), timeout)
        return phone in self.handed

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        return []  # every send is answered at once: no outcome is ever unknown, nothing to settle


# --- the processes ------------------------------------------------------------------------


class Processes:
    """The dev server and the API process: started here, always stopped here."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server: harness.DevServer | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.api_url = ""

    def start_server(self) -> harness.DevServer:
        # File-backed, like `journeys dev` (see bench/README.md for why not in memory).
        self.server = harness.DevServer(self.workdir, persistent=True)
        return self.server

    def start_api(self, database_url: str, journeys_dir: Path, processes: int = 1) -> str:
        assert self.server is not None, "the server first: the API connects to it"
        cli = Path(sys.executable).parent / "journeys"
        if not cli.exists():
            raise SystemExit(f"the `journeys` command is missing ({cli}): pip install -e .")
        port = harness.free_port()
        env = {**os.environ, "JOURNEYS_DATABASE_URL": database_url, "JOURNEYS_API_TOKEN": TOKEN,
               "TEMPORAL_ADDRESS": self.server.address, "JOURNEYS_DIR": str(journeys_dir),
               "JOURNEYS_SMS_SENDER": "console"}
        with (self.workdir / "api.log").open("ab") as out:
            self.api = subprocess.Popen([str(cli), "api", "--host", "127.0.0.1", "--port", str(port),
                                         "--processes", str(processes)], env=env,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.api_url = f"http://127.0.0.1:{port}"
        return self.api_url

    async def wait_for_api(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.api_url) as http:
            while True:
                if self.api is not None and self.api.poll() is not None:
                    raise SystemExit(f"the API exited (code {self.api.returncode}):\n{self.tail('api.log')}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise SystemExit(f"the API did not become healthy in {timeout:.0f}s:\n{self.tail('api.log')}")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        harness.stop_process(self.api)  # the API first: it talks to the server
        if self.server is not None:
            self.server.stop()

    def tail(self, name: str, lines: int = 20) -> str:
        return harness.tail(self.workdir / name, lines)


# --- (a) throughput -------------------------------------------------------------------------


@dataclass
class Throughput:
    mode: str  # single-httpx | single | batch
    events: int
    batch_size: int
    requests: int
    concurrency: int
    wall_seconds: float = 0.0
    events_per_second: float = 0.0
    request_p50_ms: float = 0.0
    request_p99_ms: float = 0.0
    api_cpu_percent: float = 0.0  # of one core, over the wall time (all its processes)
    client_cpu_percent: float = 0.0  # this process (the load generator, idle workers): of one core
    rejected: int = 0  # non-202 responses, transport errors, or events not accepted
    error_examples: list[str] = field(default_factory=list)


Post = Callable[[Any], Awaitable[tuple[int, Any]]]  # a body -> the response's status and JSON


def via_httpx(http: httpx.AsyncClient) -> Post:
    async def post(body: Any) -> tuple[int, Any]:
        response = await http.post("/events", json=body)
        return response.status_code, response.json()
    return post


def via_raw(raw: KeepAliveClient) -> Post:
    async def post(body: Any) -> tuple[int, Any]:
        status, payload = await raw.post("/events", json.dumps(body).encode())
        return status, json.loads(payload)
    return post


async def post_all(post: Post, bodies: list[Any], concurrency: int) -> tuple[float, list[float], list[str]]:
    """POST every body (at most ``concurrency`` in flight); wall time, request times, errors."""
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []
    errors: list[str] = []

    async def one(body: Any) -> None:
        async with gate:
            begun = time.perf_counter()
            try:
                status, answer = await post(body)
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as err:
                errors.append(f"{type(err).__name__}: {err}"[:200])
                return
            times.append(time.perf_counter() - begun)
            expected = len(body) if isinstance(body, list) else 1
            if status != 202 or answer.get("accepted") != expected:
                errors.append(f"{status}: {str(answer)[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(one(body) for body in bodies))
    return time.perf_counter() - started, times, errors


# (mode, events per request, client): the same single requests through httpx too, in the
# same run: what a heavier load generator costs the rate it measures.
MODES = (("single-httpx", 1, "httpx"), ("single", 1, "raw"), ("batch", 0, "raw"))


async def measure_throughput(http: httpx.AsyncClient, raw: KeepAliveClient, customers: list[str],
                             args: argparse.Namespace, api_pid: int, run: str) -> list[Throughput]:
    def event(mode: str, index: int) -> dict[str, Any]:
        return {"id": f"{run}-{mode}-{index}", "type": QUIET_EVENT, "customer_id": customers[index % len(customers)],
                "properties": {"page": f"/products/{index % 97}"}}

    clients = {"httpx": via_httpx(http), "raw": via_raw(raw)}
    for name, post in clients.items():
        await post_all(post, [event(f"warm-{name}", i) for i in range(min(50, args.events))], args.concurrency)
    results = []
    for mode, size, client in MODES:
        size = size or args.batch
        events = [event(mode, i) for i in range(args.events)]
        bodies: list[Any] = events if size == 1 else [events[i:i + size] for i in range(0, len(events), size)]
        cpu0, client_cpu0 = harness.tree_cpu_seconds(api_pid), time.process_time()
        wall, times, errors = await post_all(clients[client], bodies, args.concurrency)
        cpu, client_cpu = harness.tree_cpu_seconds(api_pid) - cpu0, time.process_time() - client_cpu0
        result = Throughput(mode=mode, events=len(events), batch_size=size, requests=len(bodies),
                            concurrency=args.concurrency, wall_seconds=wall,
                            events_per_second=(len(events) - (len(errors) * size)) / wall if wall else 0.0,
                            request_p50_ms=1000 * harness.percentile(times, 0.5),
                            request_p99_ms=1000 * harness.percentile(times, 0.99),
                            api_cpu_percent=100 * cpu / wall if wall else 0.0,
                            client_cpu_percent=100 * client_cpu / wall if wall else 0.0, rejected=len(errors),
                            error_examples=errors[:3])
        harness.log(f"  {mode}: {result.events_per_second:.0f} events/s ({len(bodies)} requests in {wall:.1f}s)")
        results.append(result)
    return results


# --- (b) reaction latency -------------------------------------------------------------------


# A reaction phase's load. "closed": at most N purchases in flight, a purchase being in flight
# from its POST until its text is handed (the next is posted when one is answered); "burst":
# every purchase posted at once with N POSTs in flight, however far the reactions lag behind,
# so the figures measure the queue a burst of that size builds, and grow with its size.
CLOSED, BURST = "closed", "burst"


@dataclass
class Reaction:
    customers: int
    in_flight: int
    load: str = CLOSED
    reacted: int = 0  # texts handed to the sender
    reactions_per_second: float = 0.0  # texts handed / wall time
    post_p50_ms: float = 0.0
    post_p99_ms: float = 0.0
    observed_p50_ms: float = 0.0  # POST sent -> workflow task that saw the purchase
    observed_p99_ms: float = 0.0
    observed_max_ms: float = 0.0
    sms_p50_ms: float = 0.0  # POST sent -> SMS handed to the sender
    sms_p99_ms: float = 0.0
    sms_max_ms: float = 0.0
    wall_seconds: float = 0.0  # first POST to last text handed
    worker_cpu_percent: float = 0.0  # this process (workers and the HTTP client), of one core
    server_cpu_percent: float = 0.0  # the Temporal dev server, of one core
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # p50/p99 per stage, sampled runs
    history_anomalies: dict[str, int] = field(default_factory=dict)  # e.g. WORKFLOW_TASK_TIMED_OUT: 3
    errors: list[str] = field(default_factory=list)


async def enter_and_wait(http: httpx.AsyncClient, client: Client, db: Engine, ids: list[str], run: str,
                         timeout: float = 120.0) -> tuple[list[str], list[str]]:
    """Start the journey for every customer (over HTTP, like a shop would) and wait until
    each run is waiting for its purchase. Returns the customers whose run is waiting and
    a description of those that did not get there in time (they are left out)."""
    for i in range(0, len(ids), 50):
        batch = [{"id": f"{run}-enter-{cid}", "type": ENTER_EVENT, "customer_id": cid} for cid in ids[i:i + 50]]
        response = await http.post("/events", json=batch)
        if response.status_code != 202:
            raise SystemExit(f"entering the journey failed: {response.status_code} {response.text[:300]}")
        missed = [r["id"] for r in response.json()["results"] if r["started"] != [JOURNEY_ID]]
        if missed:
            raise SystemExit(f"{len(missed)} run(s) did not start, e.g. {missed[:3]}")

    def waiting() -> set[str]:
        with session_scope(db, readonly=True) as session:
            return set(session.exec(select(Enrollment.customer_id).where(
                Enrollment.customer_id.in_(ids),  # type: ignore[attr-defined]
                Enrollment.current_step == WAIT_STEP, Enrollment.status == "active")).all())

    deadline = time.monotonic() + timeout
    while len(ready := await asyncio.to_thread(waiting)) < len(ids):
        if time.monotonic() > deadline:
            stuck = [cid for cid in ids if cid not in ready]
            details = [await describe_run(client, db, cid) for cid in stuck[:3]]
            problem = (f"{len(stuck)} of {len(ids)} runs did not reach {WAIT_STEP!r} in {timeout:.0f}s "
                       "(left out); e.g.\n" + "\n".join(details))
            harness.log(problem)
            return [cid for cid in ids if cid in ready], [problem]
        await asyncio.sleep(0.2)
    return ids, []


async def describe_run(client: Client, db: Engine, cid: str) -> str:
    """What a run that did not get where it should looks like: its enrollment row, its
    workflow's status and pending work, and the last events of its history."""
    from temporalio.api.enums.v1 import EventType

    with session_scope(db, readonly=True) as session:
        rows = session.exec(select(Enrollment).where(Enrollment.customer_id == cid)).all()
        enrollments = [f"{r.status}/{r.current_step}" for r in rows]
    handle = client.get_workflow_handle(workflow_id(JOURNEY_ID, cid))
    try:
        info = await handle.describe()
        raw = info.raw_description
        history = (await handle.fetch_history()).events
        last = ", ".join(f"{EventType.Name(e.event_type).removeprefix('EVENT_TYPE_')}@"
                         f"{e.event_time.ToDatetime(tzinfo=UTC):%H:%M:%S.%f}"[:-3] for e in history[-6:])
        state = (f"{info.status.name if info.status else '?'}, {len(history)} events, pending activities "
                 f"{len(raw.pending_activities)}, pending workflow task "
                 f"{raw.pending_workflow_task.state if raw.HasField('pending_workflow_task') else 'none'}; "
                 f"last: {last}")
    except Exception as err:
        state = f"{type(err).__name__}: {err}"
    return f"  {cid}: enrollment {enrollments}; workflow {state}"


async def measure_reaction(http: httpx.AsyncClient, post: Post, client: Client, db: Engine, sender: TimingSender,
                           ids: list[str], phones: dict[str, str], in_flight: int, load: str, run: str,
                           timeout: float, sample: int, server_pid: int) -> Reaction:
    """``post``: the purchases' client (the lean one: the workers share this process)."""
    ids, problems = await enter_and_wait(http, client, db, ids, run)
    result = Reaction(customers=len(ids), in_flight=in_flight, load=load, errors=problems)
    posted: dict[str, tuple[float, float]] = {}  # customer -> (perf_counter, wall clock) just before the POST
    post_times: list[float] = []
    gate = asyncio.Semaphore(in_flight)
    phone_of = {cid: phone for phone, cid in phones.items()}
    deadline = time.monotonic() + timeout

    async def purchase(cid: str) -> None:
        async with gate:
            posted[cid] = (time.perf_counter(), time.time())
            try:
                status, answer = await post({"id": f"{run}-order-{cid}", "type": "purchase", "customer_id": cid,
                                             "properties": {"amount": 42}})
            except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                result.errors.append(f"{cid}: {type(err).__name__}: {err}"[:200])
                return
            post_times.append(time.perf_counter() - posted[cid][0])
            if status != 202 or answer["results"][0]["signalled"] != [JOURNEY_ID]:
                result.errors.append(f"{cid}: {status} {str(answer)[:200]}")
            elif load == CLOSED:  # still in flight until its text is handed
                await sender.handed_to(phone_of[cid], max(0.0, deadline - time.monotonic()))

    harness.log(f"  {len(ids)} runs waiting; posting the purchases")
    begun = time.perf_counter()
    cpu0, server0 = time.process_time(), harness.process_cpu_seconds(server_pid)
    await asyncio.gather(*(purchase(cid) for cid in ids))
    wanted = {phone for phone, cid in phones.items() if cid in posted}
    assert sender.changed is not None
    while not wanted <= sender.handed.keys() and time.monotonic() < deadline:
        sender.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sender.changed.wait(), timeout=1.0)
    result.wall_seconds = time.perf_counter() - begun
    if result.wall_seconds:
        result.worker_cpu_percent = 100 * (time.process_time() - cpu0) / result.wall_seconds
        result.server_cpu_percent = 100 * (harness.process_cpu_seconds(server_pid) - server0) / result.wall_seconds

    sms = [sender.handed[phone] - posted[phones[phone]][0] for phone in wanted if phone in sender.handed]
    observed, stages, result.history_anomalies = await inspect_runs(client, posted, sample)
    result.stages_ms = {name: {"p50": round(1000 * harness.percentile(values, 0.5), 1),
                               "p99": round(1000 * harness.percentile(values, 0.99), 1), "runs": len(values)}
                        for name, values in stages.items()}
    result.reacted = len(sms)
    result.reactions_per_second = len(sms) / result.wall_seconds if result.wall_seconds else 0.0
    if len(sms) < len(ids):
        result.errors.append(f"{len(ids) - len(sms)} run(s) sent nothing within {timeout:.0f}s")
    result.post_p50_ms = 1000 * harness.percentile(post_times, 0.5)
    result.post_p99_ms = 1000 * harness.percentile(post_times, 0.99)
    result.sms_p50_ms, result.sms_p99_ms = 1000 * harness.percentile(sms, 0.5), 1000 * harness.percentile(sms, 0.99)
    result.sms_max_ms = 1000 * max(sms, default=0.0)
    result.observed_p50_ms = 1000 * harness.percentile(observed, 0.5)
    result.observed_p99_ms = 1000 * harness.percentile(observed, 0.99)
    result.observed_max_ms = 1000 * max(observed, default=0.0)
    return result


# Where a reaction's time goes, from the run's history (server timestamps).
STAGES = {
    "post_to_signal": "POST sent -> signal recorded (API: store the event, signal the run)",
    "signal_to_task": "signal -> workflow task started (waiting for a worker)",
    "task_to_send_scheduled": "task started -> SMS activity scheduled (inspect the event, complete the task)",
    "send_queued": "SMS activity scheduled -> started (waiting on the SMS task queue)",
    "send_ran": "SMS activity started -> completed (sending rules, message rows, the sender)",
}


async def inspect_runs(client: Client, posted: dict[str, tuple[float, float]],
                       sample: int) -> tuple[list[float], dict[str, list[float]], dict[str, int]]:
    """From each run's timeline: when its workflow saw the purchase (the `event` entry of
    the wait step), less the wall-clock moment its POST was sent; and, for a sample of
    runs, the stages of the reaction from their histories."""
    from temporalio.api.enums.v1 import EventType, TimeoutType

    gate = asyncio.Semaphore(20)
    chosen = set(list(posted)[:: max(1, len(posted) // max(1, sample))][:sample])
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    anomalies: Counter[str] = Counter()  # timed-out or failed tasks seen in the sampled histories

    async def one(cid: str) -> float | None:
        async with gate:
            handle = client.get_workflow_handle(workflow_id(JOURNEY_ID, cid), result_type=JourneyResult)
            try:
                done: JourneyResult = await asyncio.wait_for(handle.result(), timeout=30)
                history = (await handle.fetch_history()).events if cid in chosen else []
            except Exception:
                return None
        if history:
            at = {}
            for event in history:
                kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
                if kind == "WORKFLOW_TASK_TIMED_OUT":
                    timeout_type = event.workflow_task_timed_out_event_attributes.timeout_type
                    anomalies[f"{kind} ({TimeoutType.Name(timeout_type).removeprefix('TIMEOUT_TYPE_')})"] += 1
                elif kind.endswith(("_TIMED_OUT", "_FAILED")):
                    anomalies[kind] += 1
                moment = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
                if kind == "WORKFLOW_EXECUTION_SIGNALED":
                    at["signal"] = moment
                elif "signal" in at and kind == "WORKFLOW_TASK_STARTED":
                    at.setdefault("task", moment)
                elif "signal" in at and kind.startswith("ACTIVITY_TASK_"):
                    at.setdefault(kind.removeprefix("ACTIVITY_TASK_").lower(), moment)
            if {"signal", "task", "scheduled", "started", "completed"} <= at.keys():
                stages["post_to_signal"].append(at["signal"] - posted[cid][1])
                stages["signal_to_task"].append(at["task"] - at["signal"])
                stages["task_to_send_scheduled"].append(at["scheduled"] - at["task"])
                stages["send_queued"].append(at["started"] - at["scheduled"])
                stages["send_ran"].append(at["completed"] - at["started"])
        seen = next((e.at for e in done.timeline if e.step == WAIT_STEP and e.action == "event"), None)
        return None if seen is None else seen.timestamp() - posted[cid][1]

    found = await asyncio.gather(*(one(cid) for cid in posted))
    return [value for value in found if value is not None], stages, dict(anomalies)


# --- output -----------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['cpus']} CPU(s); database: {report['database']}; Temporal dev server (file-backed, "
             f"processes.dev); API: `journeys api --processes {report['api_processes']}`; workers in the benchmark "
             "process; "
             f"1-min load average {report['load_average_before']} before, {report['load_average_after']} after"]
    lines.append("")
    lines.append("(a) POST /events throughput (type page_viewed: stored, customer updated, nothing started)")
    head = f"  {'mode':<12} {'events':>7} {'requests':>9} {'in flight':>9} {'wall s':>7} {'events/s':>9} " \
           f"{'req p50 ms':>10} {'req p99 ms':>10} {'API CPU %':>9} {'client CPU %':>12} {'rejected':>8}"
    lines.append(head)
    for t in report["throughput"]:
        mode = t["mode"] if t["batch_size"] == 1 else f"batch{t['batch_size']}"
        lines.append(f"  {mode:<12} {t['events']:>7} {t['requests']:>9} {t['concurrency']:>9} "
                     f"{t['wall_seconds']:>7.2f} {t['events_per_second']:>9.0f} {t['request_p50_ms']:>10.1f} "
                     f"{t['request_p99_ms']:>10.1f} {t['api_cpu_percent']:>9.0f} {t['client_cpu_percent']:>12.0f} "
                     f"{t['rejected']:>8}")
    lines.append("")
    lines.append("(b) purchase -> reaction of a journey waiting for it (ms, from just before the POST)")
    lines.append("  closed: a purchase is in flight from its POST until its text is handed; burst: every purchase")
    lines.append("  posted at once, N POSTs in flight (the figures measure the queue the burst builds)")
    lines.append(f"  {'load':<6} {'in flight':>9} {'runs':>5} {'reacted':>7} {'per s':>6} {'POST p50/p99':>14} "
                 f"{'observed p50 / p99 / max':>26} {'SMS handed p50 / p99 / max':>28} {'wall s':>7} "
                 f"{'worker CPU %':>12} {'server CPU %':>12}")
    for r in report["reaction"]:
        lines.append(f"  {r['load']:<6} {r['in_flight']:>9} {r['customers']:>5} {r['reacted']:>7} "
                     f"{r['reactions_per_second']:>6.1f} "
                     f"{r['post_p50_ms']:>6.0f} /{r['post_p99_ms']:>6.0f} "
                     f"{r['observed_p50_ms']:>8.0f} /{r['observed_p99_ms']:>6.0f} /{r['observed_max_ms']:>6.0f}    "
                     f"{r['sms_p50_ms']:>8.0f} /{r['sms_p99_ms']:>6.0f} /{r['sms_max_ms']:>6.0f} "
                     f"{r['wall_seconds']:>7.1f} {r['worker_cpu_percent']:>12.0f} {r['server_cpu_percent']:>12.0f}")
    phases = " | ".join(f"{r['in_flight']} {r['load']}" for r in report["reaction"])
    lines.append(f"  where the time goes, p50 / p99 ms ({phases}; from the histories of sampled runs):")
    for name, label in STAGES.items():
        cells = [r["stages_ms"].get(name, {}) for r in report["reaction"]]
        lines.append("    " + " | ".join(f"{c.get('p50', 0):>6.0f} /{c.get('p99', 0):>6.0f}" for c in cells)
                     + f"   {label}")
    for r in report["reaction"]:
        if r["history_anomalies"]:
            lines.append(f"  in the sampled histories ({r['in_flight']} in flight): " +
                         ", ".join(f"{kind} x{count}" for kind, count in sorted(r["history_anomalies"].items())))
    problems = [f"  throughput {t['mode']}: {e}" for t in report["throughput"] for e in t["error_examples"]]
    problems += [f"  reaction ({r['in_flight']} in flight): {e}" for r in report["reaction"] for e in r["errors"][:3]]
    if problems:
        lines += ["", "problems:", *problems]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, processes: Processes, workdir: Path) -> dict[str, Any]:
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    catalog = write_journeys(workdir / "journeys")
    server = processes.start_server()
    run = uuid.uuid4().hex[:6]
    with harness.fresh_database(args.database_url, workdir, "events") as db:
        url = db.url.render_as_string(hide_password=False)  # for the API process
        quiet = [f"t-{i:04d}" for i in range(args.throughput_customers)]
        phases = [(1, CLOSED), (args.reaction_concurrency, CLOSED)] + \
            ([(args.reaction_concurrency, BURST)] if args.burst else [])
        groups = [[f"r{p}-{i:04d}" for i in range(args.customers)] for p in range(len(phases))]
        harness.seed_customers(db, quiet, first_phone=0)
        phones: dict[str, str] = {}
        for index, ids in enumerate(groups):
            phones |= harness.seed_customers(db, ids, first_phone=100_000 * (index + 1))
        await server.ready()
        client = await connect_to(server.address)
        harness.log(f"Temporal dev server at {server.address}; database {harness.backend_name(args.database_url)}")
        processes.start_api(url, workdir / "journeys", args.api_processes)
        await processes.wait_for_api()
        assert processes.api is not None
        harness.log(f"API at {processes.api_url}")
        sender = TimingSender()
        sender.loop, sender.changed = asyncio.get_running_loop(), asyncio.Event()
        limits = httpx.Limits(max_connections=max(args.concurrency, args.reaction_concurrency),
                              max_keepalive_connections=max(args.concurrency, args.reaction_concurrency))
        async with (
            harness.running(build_workers(client, catalog, db, sender)),
            httpx.AsyncClient(base_url=processes.api_url, headers={"Authorization": f"Bearer {TOKEN}"},
                              limits=limits, timeout=60) as http,
            KeepAliveClient(processes.api_url, {"Authorization": f"Bearer {TOKEN}"},
                            max(args.concurrency, args.reaction_concurrency)) as raw,
        ):
            harness.log(f"(a) throughput: {args.events} events, {args.concurrency} requests in flight")
            throughput = await measure_throughput(http, raw, quiet, args, processes.api.pid, run)
            reactions = []
            for (in_flight, load), ids in zip(phases, groups, strict=True):
                harness.log(f"(b) reaction: {len(ids)} waiting runs, {in_flight} purchase(s) in flight ({load})")
                reaction = await measure_reaction(http, via_raw(raw), client, db, sender, ids, phones, in_flight, load,
                                                  run, args.reaction_timeout, args.history_sample,
                                                  server.process.pid)
                harness.log(f"  SMS p50 {reaction.sms_p50_ms:.0f} ms, p99 {reaction.sms_p99_ms:.0f} ms "
                            f"({reaction.reacted}/{reaction.customers}, {reaction.reactions_per_second:.1f}/s)")
                reactions.append(reaction)
    return {"database": "postgresql" if args.database_url else "sqlite", "cpus": harness.CPUS,
            "api_processes": args.api_processes,
            "load_average_before": load_before, "load_average_after": round(os.getloadavg()[0], 2),
            "throughput": [asdict(t) for t in throughput], "reaction": [asdict(r) for r in reactions]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=2000, help="events per throughput mode (default 2000)")
    parser.add_argument("--batch", type=int, default=50, help="events per request in batch mode (default 50)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--api-processes", type=int, default=1,
                        help="`journeys api --processes N` (default 1)")
    parser.add_argument("--throughput-customers", type=int, default=200,
                        help="existing customers the throughput events are spread over (default 200)")
    parser.add_argument("--customers", type=int, default=200,
                        help="waiting runs per reaction phase (default 200)")
    parser.add_argument("--reaction-concurrency", type=int, default=20,
                        help="purchases in flight in the second reaction phase (default 20; the first has "
                             "one): a purchase is in flight from its POST until its text is handed")
    parser.add_argument("--burst", action="store_true",
                        help="a third reaction phase: every purchase posted at once, --reaction-concurrency POSTs "
                             "in flight (what a burst of --customers purchases waits)")
    parser.add_argument("--reaction-timeout", type=float, default=120.0,
                        help="seconds to wait for every reaction (default 120)")
    parser.add_argument("--history-sample", type=int, default=50,
                        help="runs per reaction phase whose history is read for the stage breakdown (default 50)")
    harness.add_database_url(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def _terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="journeys-bench-events-") as tmp:
        workdir = Path(tmp)
        processes = Processes(workdir)
        try:
            report = asyncio.run(bench(args, processes, workdir))
        except BaseException as err:
            harness.log(f"benchmark failed: {err!r}")
            for name in ("api.log", "temporal.log"):
                if last := processes.tail(name):
                    harness.log(f"last lines of {name}:\n{last}")
            if not isinstance(err, KeyboardInterrupt | SystemExit):
                import traceback

                traceback.print_exc()
            return 130 if isinstance(err, KeyboardInterrupt) else 1
        finally:
            processes.stop()
    print(json.dumps(report, indent=2) if args.json else table(report))
    harness.print_load_average(to_stderr=args.json)
    harness.print_headline(*(f"reaction p99 ({r['in_flight']} in flight): {r['sms_p99_ms']:.0f} ms"
                             if r["load"] == CLOSED else
                             f"reaction p99 (burst of {r['customers']}): {r['sms_p99_ms']:.0f} ms"
                             for r in report["reaction"] if r["in_flight"] > 1), to_stderr=args.json)
    complete = all(r["reacted"] == r["customers"] and not r["errors"] for r in report["reaction"])
    return 0 if complete and not any(t["rejected"] for t in report["throughput"]) else 1


if __name__ == "__main__":
    harness.leave(main())
