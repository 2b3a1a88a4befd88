"""Entering journeys in bulk, next to what the server does at all: a trivial workflow's rate.

    .venv/bin/python -m bench.fanout [--customers 10000] [--events 1000] [--database-url postgresql://...] [--json]

Starts an in-memory Temporal dev server and, on it, in this order:

1. a trivial workflow (bench/baseline_workflow.py TrivialWorkflow: one workflow task)
   started and awaited ``--trivial`` times, 50 in flight: starts+completions per second;
2. event-triggered entry: ``--events`` events of a type a journey starts on, through the
   engine's event path (EventRouter.route, 8 at a time as the API does);
3. segment-entry routing: as many ``segment_entered`` events, for a journey that starts
   on entering the segment;
4. schedule fan-out: one firing of a broadcast journey (a split with a holdout and one
   text) for N customers in the `vip` segment through the real JourneyFanout workflow,
   the fan-out's own rate limit lifted (per_second=0) to measure the engine, and the
   time until every run has ended.

Each entry rate is journeys started per second; each is also divided by the trivial
rate. The last line is ``fan-out ratio <schedule fan-out entries/s / trivial/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import select
from temporalio.worker import Worker

from bench import harness
from bench.baseline_workflow import TRIVIAL_TASK_QUEUE, TrivialWorkflow
from core.event import EventIn
from core.events.router import EventRouter
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import session_scope
from store.tables import Enrollment, SegmentMembership
from workflows.fanout import FANOUT_WORKFLOW, FanoutInput, FanoutResult

BROADCAST = """
id: broadcast
name: Broadcast
trigger: {schedule: {cron: "0 10 * * 5", segment: vip, timezone: Europe/Stockholm}}
reentry: always
steps:
  - split:
      name: offer
      variants:
        - {name: a, weight: 45, steps: [{id: text_a, send_sms: {text: "Early access A", purpose: transactional}}]}
        - {name: b, weight: 45, steps: [{id: text_b, send_sms: {text: "Early access B", purpose: transactional}}]}
        - {name: holdout, weight: 10, steps: []}
"""
SIGNUP = """
id: signup
name: Signed up
trigger: {event: bench_signup}
reentry: always
steps:
  - {id: hello, send_sms: {text: "Welcome", purpose: transactional}}
"""
JOINED = """
id: joined
name: Joined the segment
trigger: {segment_entered: vip}
reentry: always
steps:
  - {id: hello, send_sms: {text: "You are in", purpose: transactional}}
"""
MOMENT = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # Friday 10:00 in Stockholm
TRIVIAL_IN_FLIGHT = 50
ROUTERS_IN_FLIGHT = 8  # the API routes this many events at once


def seed(db, count: int) -> None:  # type: ignore[no-untyped-def]
    """N opted-in customers, all members of `vip`."""
    ids = [f"c{i:06d}" for i in range(count)]
    harness.seed_customers(db, ids, at=MOMENT)
    with session_scope(db) as session:
        for start in range(0, count, 2000):
            session.execute(insert(SegmentMembership), [{"customer_id": cid, "segment": "vip", "entered_at": MOMENT}
                                                        for cid in ids[start:start + 2000]])


def counts(db) -> tuple[int, int, datetime | None]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        total = session.exec(select(func.count()).select_from(Enrollment)).one()
        ended = session.exec(select(func.count()).select_from(Enrollment).where(Enrollment.status == "ended")).one()
        return total, ended, None


async def trivial_rate(client, count: int) -> float:  # type: ignore[no-untyped-def]
    """Trivial workflows started and completed per second, TRIVIAL_IN_FLIGHT at once."""
    gate = asyncio.Semaphore(TRIVIAL_IN_FLIGHT)

    async def one(n: int) -> None:
        async with gate:
            await client.execute_workflow(TrivialWorkflow.run, n, id=f"bench-trivial-{n}",
                                          task_queue=TRIVIAL_TASK_QUEUE)

    await asyncio.gather(*(one(n) for n in range(-20, 0)))  # warm-up
    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.perf_counter() - began)


async def entry_rate(router: EventRouter, events: list[EventIn], journey: str) -> tuple[int, float]:
    """(journeys of ``journey`` started, per second) routing ``events``, ROUTERS_IN_FLIGHT at once."""
    pending = iter(events)
    started = 0

    async def one_router() -> None:
        nonlocal started
        for event in pending:  # one shared iterator: each event is routed once
            result = await router.route(event, source="bench")
            started += result.started.count(journey)

    began = time.perf_counter()
    await asyncio.gather(*(one_router() for _ in range(ROUTERS_IN_FLIGHT)))
    return started, started / (time.perf_counter() - began)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    catalog = harness.write_catalog(workdir / "journeys", {"broadcast.yaml": BROADCAST, "signup.yaml": SIGNUP,
                                                           "joined.yaml": JOINED,
                                                           "segments.yaml": "segments:\n  vip: {manual: true}\n"})
    server = harness.DevServer(workdir)
    try:
        await server.ready()
        client = await connect_to(server.address)
        with harness.fresh_database(args.database_url, workdir, "fanout") as db:
            seed(db, args.customers)
            sender = harness.NullSender()
            router = EventRouter(catalog, db, client)
            trivial = Worker(client, task_queue=TRIVIAL_TASK_QUEUE, workflows=[TrivialWorkflow])
            async with harness.running([*build_workers(client, catalog, db, sender, router=router), trivial]):
                trivial_per_second = await trivial_rate(client, args.trivial)
                people = [f"c{i:06d}" for i in range(min(args.events, args.customers))]
                signups = [EventIn(id=f"signup-{cid}", type="bench_signup", customer_id=cid) for cid in people]
                signed_up, signup_per_second = await entry_rate(router, signups, "signup")
                entering = [EventIn(id=f"entered-{cid}", type="segment_entered", customer_id=cid,
                                    properties={"segment": "vip"}) for cid in people]
                joined, joined_per_second = await entry_rate(router, entering, "joined")
                began = time.perf_counter()
                result: FanoutResult = await client.execute_workflow(
                    FANOUT_WORKFLOW, FanoutInput(journey_id="broadcast", moment=MOMENT, per_second=0),
                    id="bench-fanout", task_queue="journeys", result_type=FanoutResult)
                entered = time.perf_counter() - began
                while True:
                    total, ended, _ = await asyncio.to_thread(counts, db)
                    if ended >= total:
                        break
                    await asyncio.sleep(0.5)
                finished = time.perf_counter() - began
                again = time.perf_counter()
                repeat: FanoutResult = await client.execute_workflow(
                    FANOUT_WORKFLOW, FanoutInput(journey_id="broadcast", moment=MOMENT, per_second=0),
                    id="bench-fanout-again", task_queue="journeys", result_type=FanoutResult)
                repeat_seconds = time.perf_counter() - again
        return {"trivial": args.trivial, "trivial_per_second": trivial_per_second,
                "events": len(people), "event_entries": signed_up, "event_entries_per_second": signup_per_second,
                "segment_entries": joined, "segment_entries_per_second": joined_per_second,
                "customers": args.customers, "started": result.started, "seconds_to_enter": entered,
                "journeys_started_per_second": result.started / entered, "seconds_until_all_ended": finished,
                "texts_sent": sender.count, "repeat_firing_started": repeat.started,
                "repeat_firing_seconds": repeat_seconds}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000, help="segment members the broadcast fans out to")
    parser.add_argument("--events", type=int, default=1000, help="events per routed entry phase (default 1000)")
    parser.add_argument("--trivial", type=int, default=1000, help="trivial workflows started (default 1000)")
    harness.add_database_url(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
            figures = asyncio.run(run(args, Path(tmp)))
    finally:
        harness.drop_leftover_databases()
    trivial = figures["trivial_per_second"]
    figures["fanout_ratio"] = figures["journeys_started_per_second"] / trivial
    headline = f"fan-out ratio {figures['fanout_ratio']:.2f}"
    if args.json:
        print(json.dumps(figures))
        harness.print_load_average(to_stderr=True)
        harness.print_headline(headline, to_stderr=True)
        return
    backend = harness.backend_name(args.database_url)
    print(f"entering journeys in bulk ({backend}; one worker process, in-memory dev server)")
    print(f"  trivial workflow          {figures['trivial']:,} started+completed = {trivial:.0f}/s "
          f"({TRIVIAL_IN_FLIGHT} in flight)")
    print(f"  event-triggered entry     {figures['event_entries']:,} of {figures['events']:,} events = "
          f"{figures['event_entries_per_second']:.0f} journeys/s "
          f"({figures['event_entries_per_second'] / trivial:.2f} of trivial)")
    print(f"  segment-entry routing     {figures['segment_entries']:,} of {figures['events']:,} events = "
          f"{figures['segment_entries_per_second']:.0f} journeys/s "
          f"({figures['segment_entries_per_second'] / trivial:.2f} of trivial)")
    print(f"  schedule fan-out          {figures['started']:,} of {figures['customers']:,} in "
          f"{figures['seconds_to_enter']:.1f} s = {figures['journeys_started_per_second']:.0f} journeys/s")
    print(f"  all runs ended after      {figures['seconds_until_all_ended']:.1f} s ({figures['texts_sent']:,} texts)")
    print(f"  same occasion again       {figures['repeat_firing_started']} started "
          f"({figures['repeat_firing_seconds']:.1f} s to check everyone)")
    harness.print_load_average()
    harness.print_headline(headline)


if __name__ == "__main__":
    main()
