"""Fan-out of a broadcast: a `schedule` journey firing for N segment members.

    .venv/bin/python -m bench.fanout [--customers 10000] [--database-url postgresql://...] [--json]

Starts an in-memory Temporal dev server, seeds N customers in the `vip` segment, and
runs one firing of a broadcast journey (a split with a holdout and one text) through
the real JourneyFanout workflow and workers. It prints journeys started per second
(from the firing's start to the last run entered), and the time until every run has
ended. The fan-out's own rate limit is lifted (per_second=0) to measure the engine.
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

from bench import harness
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
MOMENT = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # Friday 10:00 in Stockholm


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


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    catalog = harness.write_catalog(workdir / "journeys", {"broadcast.yaml": BROADCAST,
                                                           "segments.yaml": "segments:\n  vip: {manual: true}\n"})
    server = harness.DevServer(workdir)
    try:
        await server.ready()
        client = await connect_to(server.address)
        with harness.fresh_database(args.database_url, workdir, "fanout") as db:
            seed(db, args.customers)
            sender = harness.NullSender()
            async with harness.running(build_workers(client, catalog, db, sender)):
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
        return {"customers": args.customers, "started": result.started, "seconds_to_enter": entered,
                "journeys_started_per_second": result.started / entered, "seconds_until_all_ended": finished,
                "texts_sent": sender.count, "repeat_firing_started": repeat.started,
                "repeat_firing_seconds": repeat_seconds}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    harness.add_database_url(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
            figures = asyncio.run(run(args, Path(tmp)))
    finally:
        harness.drop_leftover_databases()
    if args.json:
        print(json.dumps(figures))
        harness.print_load_average(to_stderr=True)
        return
    backend = harness.backend_name(args.database_url)
    print(f"fan-out of a broadcast to {figures['customers']:,} customers ({backend})")
    print(f"  journeys started      {figures['started']:,} in {figures['seconds_to_enter']:.1f} s "
          f"= {figures['journeys_started_per_second']:.0f} journeys/s")
    print(f"  all runs ended after  {figures['seconds_until_all_ended']:.1f} s ({figures['texts_sent']:,} texts)")
    print(f"  same occasion again   {figures['repeat_firing_started']} started "
          f"({figures['repeat_firing_seconds']:.1f} s to check everyone)")
    harness.print_load_average()


if __name__ == "__main__":
    main()
