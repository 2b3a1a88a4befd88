"""The worker's endpoint (JOURNEYS_WORKER_METRICS_PORT) on a real worker process's code
(run_worker, in this event loop) and the real Temporal dev server: the SDK's and the
engine's metrics after a journey that sends, defers and emits, a segment refresh, and
/healthz and /readyz through start, a database outage and the stop. The Grafana
dashboard in ops/grafana queries only series such a run serves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from core.clock import utcnow
from processes.settings import ServiceSettings, SettingsError
from processes.temporal import connect_to
from processes.worker import run_worker
from processes.worker_http import listen
from store.db import session_scope
from store.tables import Customer
from tests.e2e.conftest import afternoon_zone, free_port

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "journeys.json"
CUSTOMERS = 3

JOURNEY = """\
id: obs
name: Observed
trigger: {event: obs_start}
reentry: never
steps:
  - id: hello
    send_sms: {text: "Hello {{ customer.id }}"}
  - emit: {event: obs_done}
  - id: again
    send_sms: {text: "Again {{ customer.id }}"}
"""


def write_journeys(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / "settings.yaml").write_text(textwrap.dedent("""\
        brand: Observed Shoes
        sender: {from: "+15005550006"}
        default_country: US
        default_timezone: UTC
        quiet_hours: {start: "21:00", end: "08:00"}
        frequency_caps: [{max: 1, per: 1d}]
        links: {base_url: "https://shop.example"}
        """))
    (target / "loyalty.yaml").write_text("points: {per_currency_unit: 1, expire_after: 365d}\n")
    (target / "segments.yaml").write_text(textwrap.dedent("""\
        refresh: 1h
        segments:
          prospects: {rule: "customer.orders_count == 0"}
        """))
    (target / "obs.yaml").write_text(JOURNEY)
    return target


def seed(db: Engine, ids: list[str]) -> None:
    """Opted-in customers in a zone where it is mid-afternoon now: the first text is due at
    once whatever the time of day; the second meets the cap of one a day (deferred)."""
    at, zone = datetime.now(UTC), afternoon_zone(utcnow())
    rows = [{"id": cid, "phone": f"+1201555{n:04d}", "phone_status": "ok", "first_name": "Ann",
             "sms_consent": "opted_in", "timezone": zone, "attributes": {}, "orders_count": 0,
             "total_spent": 0.0, "points": 0, "created_at": at, "updated_at": at} for n, cid in enumerate(ids)]
    with session_scope(db) as session:
        session.execute(insert(Customer), rows)


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Each sample by its name as written: what Prometheus stores (prometheus_client's parser
    would add `_total` to the SDK's counters, which the SDK does not write)."""
    found = {}
    for line in text.splitlines():
        matched = _SAMPLE.match(line)
        if matched and not line.startswith("#"):
            labels = frozenset(_LABEL.findall(matched[2] or ""))
            found[(matched[1], labels)] = float(matched[3])
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, have), v in found.items() if n == name and set(labels.items()) <= have)


@dataclass
class Running:
    url: str
    ready: asyncio.Event
    stop: asyncio.Event
    task: asyncio.Task[None]
    database_url: str


@contextlib.asynccontextmanager
async def worker(tmp_path: Path, dev_address: str, database_url: str) -> AsyncIterator[Running]:
    port = free_port()
    settings = ServiceSettings.from_mapping({
        "TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DATABASE_URL": database_url,
        "JOURNEYS_DIR": str(write_journeys(tmp_path / "journeys")),
        "JOURNEYS_WORKER_METRICS_PORT": str(port), "JOURNEYS_WORKER_METRICS_HOST": "127.0.0.1",
        "JOURNEYS_WORKER_SHUTDOWN_SECONDS": "5"})
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_worker(settings, ready=ready, stop=stop))
    running = Running(f"http://127.0.0.1:{port}", ready, stop, task, database_url)
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


async def until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await check()
        if got or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.3)


def database_url(db: Engine) -> str:
    return db.url.render_as_string(hide_password=False)


async def test_metrics_after_a_journey_sends_defers_and_emits(tmp_path: Path, dev_address: str, db: Engine) -> None:
    ids = [f"c-obs-{n}-{tmp_path.name[-6:]}" for n in range(CUSTOMERS)]
    seed(db, ids)
    async with worker(tmp_path, dev_address, database_url(db)) as running, httpx.AsyncClient(timeout=10) as http:
        await asyncio.wait_for(running.ready.wait(), timeout=60)
        client = await connect_to(dev_address)
        from processes.commands import send_event  # the CLI's path: the event is routed in this process

        for cid in ids:
            await send_event(ServiceSettings.from_mapping({"TEMPORAL_ADDRESS": dev_address,
                                                           "JOURNEYS_DATABASE_URL": running.database_url}),
                             "obs_start", cid, {}, journeys_dir=tmp_path / "journeys")
        await client.get_schedule_handle("segments-refresh").trigger()

        async def scraped() -> str | None:
            text = (await http.get(f"{running.url}/metrics")).text
            found = samples(text)
            done = (value(found, "journeys_sms_deferrals_total", journey="obs") >= CUSTOMERS
                    and value(found, "journeys_segment_refresh_seconds_count") >= 1
                    and value(found, "temporal_workflow_completed", workflow_type="SegmentRefresh") >= 1
                    # recorded once an activity has returned (the engine counts just before)
                    and value(found, "temporal_activity_execution_latency_count",
                              activity_type="journey.send_sms") >= 2 * CUSTOMERS)
            return text if done else None

        text = await until(scraped, timeout=60)
        assert text, (await http.get(f"{running.url}/metrics")).text
        found = samples(text)
        # The engine's own: every first text sent, every second one deferred by the cap.
        assert value(found, "journeys_sms_sends_total", journey="obs", status="sent", reason="") == CUSTOMERS
        assert value(found, "journeys_sms_sends_total", journey="obs", status="deferred",
                     reason="frequency_cap") == CUSTOMERS
        assert value(found, "journeys_sms_deferrals_total", journey="obs", reason="frequency_cap") == CUSTOMERS
        # The emitted event, routed by the worker, and the refresh the schedule ran.
        assert value(found, "journeys_event_routing_lag_seconds_count", source="journey") == CUSTOMERS
        assert value(found, "journeys_segment_refresh_seconds_count", outcome="ok") == 1
        # The SDK's: two workers started, the send activity ran on the SMS queue.
        assert value(found, "temporal_worker_start") == 2
        assert value(found, "temporal_activity_execution_latency_count", activity_type="journey.send_sms") == 2 * CUSTOMERS
        assert value(found, "temporal_workflow_task_schedule_to_start_latency_count") > 0
        # No personal data in any label: no customer id, no number.
        labels = " ".join(v for (_, have) in found for _, v in have)
        assert not any(cid in labels for cid in ids) and not re.search(r"\+?1201555", labels)
        assert value(found, "journeys_activity_failures_total") == 0
        check_dashboard_queries(text)


def metric_names(expression: str) -> set[str]:
    """The series a PromQL expression reads (names of the journeys_ and temporal_ families)."""
    return set(re.findall(r"\b((?:journeys|temporal)_[a-z0-9_]+)", expression))


def served_names(text: str) -> set[str]:
    """Every series name the text serves, and those of the families it declares without a
    sample yet (a labelled counter before its first count)."""
    names = {name for name, _ in samples(text)}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names |= {name + suffix for suffix in (("_bucket", "_sum", "_count") if kind == "histogram" else ("",))}
    return names


def check_dashboard_queries(text: str) -> None:
    served = served_names(text)
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
               for name in metric_names(target["expr"])}
    assert queried, "the dashboard queries nothing"
    assert not queried - served, f"the dashboard queries series the worker does not serve: {queried - served}"
    wanted = {"journeys_sms_sends_total", "journeys_sms_deferrals_total", "journeys_sms_settlements_total",
              "journeys_event_routing_lag_seconds_bucket", "journeys_segment_refresh_seconds_bucket",
              "temporal_workflow_task_schedule_to_start_latency_bucket", "temporal_activity_execution_latency_bucket",
              "journeys_activity_failures_total", "temporal_sticky_cache_size"}
    assert wanted <= queried, f"panels missing for {wanted - queried}"


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_ready_only_while_polling_and_the_database_answers(tmp_path: Path, dev_address: str,
                                                                 db: Engine) -> None:
    url = database_url(db)
    name = db.url.database
    async with worker(tmp_path, dev_address, url) as running, httpx.AsyncClient(timeout=10) as http:
        seen: list[tuple[int, str, bool]] = []  # (code, status, ready already) from the first answer on
        deadline = asyncio.get_running_loop().time() + 60
        while not running.ready.is_set() or not seen or seen[-1][0] != 200:
            with contextlib.suppress(httpx.TransportError):
                answer = await http.get(f"{running.url}/readyz")
                seen.append((answer.status_code, answer.json()["status"], running.ready.is_set()))
            assert not running.task.done() and asyncio.get_running_loop().time() < deadline, (running.task, seen)
            await asyncio.sleep(0.05)
        # Alive and answering while it wires up (migrations, schedules): not ready; ready once polling.
        assert seen[0][:2] == (503, "starting"), seen
        assert all(ready for code, _, ready in seen if code == 200), seen
        assert (await http.get(f"{running.url}/healthz")).json() == {"status": "ok"}
        ok = await http.get(f"{running.url}/readyz")
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"status": "ready", "database": "ok", "temporal": "ok", "workers": "ok"}

        admin = db.url.set(database="postgres").set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            down = await http.get(f"{running.url}/readyz")
            assert down.status_code == 503 and down.json()["database"].startswith("error: "), down.text
            assert down.json()["temporal"] == "ok" and down.json()["workers"] == "ok"
            assert (await http.get(f"{running.url}/healthz")).status_code == 200  # alive all the same
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        async def ready_again() -> bool:
            return (await http.get(f"{running.url}/readyz")).status_code == 200

        assert await until(ready_again, timeout=20)
    with pytest.raises(httpx.TransportError):  # stopped: the endpoint is gone with the worker
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(f"{running.url}/healthz")


def test_a_port_in_use_is_named() -> None:
    taken = listen("127.0.0.1", free_port())
    try:
        with pytest.raises(SettingsError, match=r"JOURNEYS_WORKER_METRICS_PORT=\d+: cannot listen"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
