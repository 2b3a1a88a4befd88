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
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import select

from bench.throughput import DevServer, NullSender, drop_leftover_databases, fresh_database
from language.validate import load_catalog
from processes.dev import wait_for_server
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import session_scope
from store.tables import Customer, Enrollment, SegmentMembership
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
    rows = [{"id": f"c{i:06d}", "phone": "+12015550123", "phone_status": "ok", "sms_consent": "opted_in",
             "attributes": {}, "orders_count": 0, "total_spent": 0.0, "points": 0, "created_at": MOMENT,
             "updated_at": MOMENT} for i in range(count)]
    with session_scope(db) as session:
        for start in range(0, count, 2000):
            session.execute(insert(Customer), rows[start:start + 2000])
            session.execute(insert(SegmentMembership), [{"customer_id": r["id"], "segment": "vip",
                                                         "entered_at": MOMENT} for r in rows[start:start + 2000]])


def counts(db) -> tuple[int, int, datetime | None]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        total = session.exec(select(func.count()).select_from(Enrollment)).one()
        ended = session.exec(select(func.count()).select_from(Enrollment).where(Enrollment.status == "ended")).one()
        return total, ended, None


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    journeys = workdir / "journeys"
    journeys.mkdir()
    (journeys / "broadcast.yaml").write_text(textwrap.dedent(BROADCAST))
    (journeys / "segments.yaml").write_text("segments:\n  vip: {manual: true}\n")
    catalog = load_catalog(journeys)
    server = DevServer(workdir)
    try:
        await wait_for_server(server.address)
        client = await connect_to(server.address)
        with fresh_database(args.database_url, workdir, "fanout") as db:
            seed(db, args.customers)
            sender = NullSender()
            workers = build_workers(client, catalog, db, sender)
            tasks = [asyncio.create_task(worker.run()) for worker in workers]
            try:
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
            finally:
                for worker in workers:
                    await worker.shutdown()
                for task in tasks:
                    await task
        return {"customers": args.customers, "started": result.started, "seconds_to_enter": entered,
                "journeys_started_per_second": result.started / entered, "seconds_until_all_ended": finished,
                "texts_sent": sender.count, "repeat_firing_started": repeat.started,
                "repeat_firing_seconds": repeat_seconds}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a database is created and dropped)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
            figures = asyncio.run(run(args, Path(tmp)))
    finally:
        drop_leftover_databases()
    if args.json:
        print(json.dumps(figures))
        return
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"fan-out of a broadcast to {figures['customers']:,} customers ({backend})")
    print(f"  journeys started      {figures['started']:,} in {figures['seconds_to_enter']:.1f} s "
          f"= {figures['journeys_started_per_second']:.0f} journeys/s")
    print(f"  all runs ended after  {figures['seconds_until_all_ended']:.1f} s ({figures['texts_sent']:,} texts)")
    print(f"  same occasion again   {figures['repeat_firing_started']} started "
          f"({figures['repeat_firing_seconds']:.1f} s to check everyone)")


if __name__ == "__main__":
    main()
