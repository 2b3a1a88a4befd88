"""A worker process's memory with many waiting runs, by sticky cache size.

    .venv/bin/python -m bench.memory [--runs 10000] [--cache-sizes 2000,200] [--database-url postgresql://...]

Starts an in-memory Temporal dev server and, per cache size, a real `journeys worker`
process with JOURNEYS_WORKER_MAX_CACHED_WORKFLOWS set to it. With the worker polling
and idle its RSS (VmRSS from /proc) is the base; then ``--runs`` customers enter a
journey that waits 30 days for an event (through the engine's event path in this
process), and once the worker is idle again its RSS and the SDK's sticky cache gauge
are read. Then the last worker is stopped and started again: its RSS once it polls
(the waiting runs stay on the server, nothing is loaded), and after ``--wake`` of the
runs are woken by their event (replayed from their histories into the cache, and ended).
Prints the figures, then the load average, then the headline lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from bench import harness
from core.event import EventIn
from core.events.router import EventRouter
from language.catalog import Catalog
from processes.temporal import connect_to
from store.db import session_scope
from store.tables import Enrollment

JOURNEY = """\
id: waiting
name: Waits a month
trigger: {event: bench_wait}
reentry: always
steps:
  - id: hold
    wait_for: {event: bench_wake, timeout: 30d}
"""
ROUTERS_IN_FLIGHT = 16


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class WorkerProcess:
    """`journeys worker` as its own process, its log in the run's temp dir."""

    def __init__(self, workdir: Path, env: dict[str, str], cache: int, name: str) -> None:
        self.metrics_port = harness.free_port()
        self.log_path = workdir / f"{name}.log"
        env = {**os.environ, **env, "JOURNEYS_WORKER_MAX_CACHED_WORKFLOWS": str(cache),
               "JOURNEYS_WORKER_METRICS_PORT": str(self.metrics_port), "JOURNEYS_WORKER_METRICS_HOST": "127.0.0.1",
               "JOURNEYS_WORKER_SHUTDOWN_SECONDS": "5"}
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen([str(Path(sys.executable).parent / "journeys"), "worker"], env=env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def polling(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "worker running" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{harness.tail(self.log_path)}")
            await asyncio.sleep(0.3)

    def cached(self) -> int:
        """The SDK's sticky cache gauge: runs this process holds in memory."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("temporal_sticky_cache_size")))

    async def idle(self, quiet: float = 4.0, timeout: float = 900) -> None:
        """Until the process used under 5% of a core for ``quiet`` seconds: its work is done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = harness.process_cpu_seconds(self.process.pid)
            await asyncio.sleep(quiet)
            if harness.process_cpu_seconds(self.process.pid) - before < 0.05 * quiet:
                return
        harness.log("the worker never went idle: figures taken anyway")

    def rss(self) -> float:
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class CachePhase:
    cache_size: int
    runs: int
    base_rss_mb: float
    rss_mb: float
    cached: int
    seconds_to_start: float

    @property
    def per_cached_run_kb(self) -> float:
        return 1024 * (self.rss_mb - self.base_rss_mb) / self.cached if self.cached else 0.0


async def route_all(router: EventRouter, events: list[EventIn]) -> None:
    pending = iter(events)

    async def one() -> None:
        for event in pending:  # one shared iterator: each event is routed once
            await router.route(event, source="bench")

    await asyncio.gather(*(one() for _ in range(ROUTERS_IN_FLIGHT)))


def waiting(db) -> int:  # type: ignore[no-untyped-def]
    """Runs that reached the wait (their progress recorded it): their workflow tasks are done."""
    with session_scope(db, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(Enrollment).where(
            Enrollment.status == "active", Enrollment.current_step == "hold")).one())


async def until_waiting(db, count: int, timeout: float = 900) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (have := await asyncio.to_thread(waiting, db)) < count:
        if time.monotonic() > deadline:
            harness.log(f"only {have:,} of {count:,} runs reached the wait: figures taken anyway")
            return
        await asyncio.sleep(1)


def ended(db) -> int:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(Enrollment).where(Enrollment.status == "ended"))
                   .one())


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    catalog: Catalog = harness.write_catalog(workdir / "journeys", {
        "settings.yaml": harness.settings_yaml("00:00", "00:00", 'links: {base_url: "http://127.0.0.1"}'),
        "loyalty.yaml": harness.LOYALTY, "waiting.yaml": JOURNEY})
    server = harness.DevServer(workdir)
    workers: list[WorkerProcess] = []
    try:
        await server.ready()
        client = await connect_to(server.address)
        with harness.fresh_database(args.database_url, workdir, "memory") as db:
            ids = [f"m{n:06d}" for n in range(args.runs * len(args.cache_sizes))]
            harness.seed_customers(db, ids)
            env = {"TEMPORAL_ADDRESS": server.address, "JOURNEYS_DIR": str(workdir / "journeys"),
                   "JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False)}
            router = EventRouter(catalog, db, client)
            phases = []
            for index, cache in enumerate(args.cache_sizes):
                worker = WorkerProcess(workdir, env, cache, f"worker-{cache}")
                workers.append(worker)
                await worker.polling()
                await worker.idle()
                base = worker.rss()
                mine = ids[index * args.runs:(index + 1) * args.runs]
                began = time.perf_counter()
                await route_all(router, [EventIn(id=f"wait-{cid}", type="bench_wait", customer_id=cid)
                                         for cid in mine])
                started = time.perf_counter() - began
                await until_waiting(db, (index + 1) * args.runs)
                await worker.idle()
                phase = CachePhase(cache, len(mine), base, worker.rss(), worker.cached(), started)
                phases.append(phase)
                harness.log(f"cache {cache}: base {base:.0f} MB, {phase.rss_mb:.0f} MB with {phase.runs:,} waiting "
                            f"runs ({phase.cached:,} cached)")
                if index < len(args.cache_sizes) - 1:
                    worker.stop()
            last = workers[-1]
            last.stop()
            again = WorkerProcess(workdir, env, args.cache_sizes[-1], "worker-restarted")
            workers.append(again)
            await again.polling()
            await again.idle()
            after_restart, cached_after_restart = again.rss(), again.cached()
            woken = ids[-args.wake:]
            await route_all(router, [EventIn(id=f"wake-{cid}", type="bench_wake", customer_id=cid) for cid in woken])
            deadline = time.monotonic() + 300
            while await asyncio.to_thread(ended, db) < len(woken) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            await again.idle()
            return {"phases": [{**asdict(p), "per_cached_run_kb": p.per_cached_run_kb} for p in phases],
                    "restart": {"cache_size": args.cache_sizes[-1], "rss_mb": after_restart,
                                "cached": cached_after_restart, "woken": len(woken),
                                "ended": await asyncio.to_thread(ended, db), "rss_after_waking_mb": again.rss(),
                                "cached_after_waking": again.cached()}}
    finally:
        for worker in workers:
            worker.stop()
        server.stop()


def report(figures: dict[str, object], args: argparse.Namespace) -> list[str]:
    phases: list[dict[str, float]] = figures["phases"]  # type: ignore[assignment]
    restart: dict[str, float] = figures["restart"]  # type: ignore[assignment]
    lines = [f"worker process RSS with waiting runs ({harness.backend_name(args.database_url)}; one `journeys worker`)",
             f"  {'cache size':>10} {'runs':>7} {'base MB':>8} {'RSS MB':>7} {'cached':>7} {'KB/(RSS-base)/cached':>20}"
             f" {'start s':>8}"]
    for p in phases:
        lines.append(f"  {p['cache_size']:>10,} {p['runs']:>7,} {p['base_rss_mb']:>8.0f} {p['rss_mb']:>7.0f} "
                     f"{p['cached']:>7,} {p['per_cached_run_kb']:>20.0f} {p['seconds_to_start']:>8.1f}")
    lines.append(f"  restarted (cache {restart['cache_size']:,}): {restart['rss_mb']:.0f} MB once polling, "
                 f"{restart['cached']} cached; after waking {restart['woken']}: {restart['rss_after_waking_mb']:.0f} "
                 f"MB, {restart['cached_after_waking']} cached, {restart['ended']} ended")
    return lines


def slope_kb(phases: list[dict[str, float]]) -> float | None:
    """KB per cached run between the largest and the smallest cache: what one more cache
    slot costs (RSS minus base also holds what any run leaves behind, cached or not)."""
    big, small = max(phases, key=lambda p: p["cached"]), min(phases, key=lambda p: p["cached"])
    if big["cached"] == small["cached"]:
        return None
    return 1024 * (big["rss_mb"] - small["rss_mb"]) / (big["cached"] - small["cached"])


def headline(figures: dict[str, object]) -> list[str]:
    phases: list[dict[str, float]] = figures["phases"]  # type: ignore[assignment]
    restart: dict[str, float] = figures["restart"]  # type: ignore[assignment]
    lines = [f"RSS with cache {p['cache_size']:,}: {p['rss_mb']:.0f} MB for {p['runs']:,} waiting runs "
             f"({p['cached']:,} cached; base {p['base_rss_mb']:.0f} MB)" for p in phases]
    per_run = slope_kb(phases)
    if per_run is not None:
        lines.append(f"per cached run: {per_run:.0f} KB (between the cache sizes)")
    lines.append(f"RSS after restart: {restart['rss_mb']:.0f} MB; after waking {restart['woken']}: "
                 f"{restart['rss_after_waking_mb']:.0f} MB")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10_000, help="waiting runs per cache size (default 10000)")
    parser.add_argument("--cache-sizes", default="2000,200",
                        help="JOURNEYS_WORKER_MAX_CACHED_WORKFLOWS values, comma-separated (default 2000,200)")
    parser.add_argument("--wake", type=int, default=20, help="runs woken after the restart (default 20)")
    harness.add_database_url(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.cache_sizes = [int(size) for size in args.cache_sizes.split(",")]
    if args.runs < 1 or args.wake > args.runs or any(size < 0 for size in args.cache_sizes):
        parser.error("--runs must be at least 1, --wake at most --runs, every cache size 0 or more")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            figures = asyncio.run(run(args, Path(tmp)))
    finally:
        harness.drop_leftover_databases()
    print(json.dumps(figures, indent=2) if args.json else "\n".join(report(figures, args)))
    harness.print_load_average(to_stderr=args.json)
    harness.print_headline(*headline(figures), to_stderr=args.json)
    restart: dict[str, int] = figures["restart"]  # type: ignore[assignment]
    return 0 if restart["ended"] >= restart["woken"] else 1


if __name__ == "__main__":
    harness.leave(main())
