"""Event store benchmark: the CPU and the statements one event costs the storing step
of the event path (core.events.store.EventStore.store), with no HTTP and no Temporal.

On a fresh database (a SQLite file, or a PostgreSQL database created for the run and
dropped after) with seeded customers, N ``page_viewed`` events (nothing triggers on
them, no segment reads them) are stored twice, the two sides interleaved in rounds so
that the machine's other work falls on both alike:

* ``plain``: as the router stores them (quiet: the plain path, core SQL);
* ``full``: the same events through the full path, as before the plain path existed
  (the ORM: the event looked up, the customer row loaded and locked, the event flushed,
  then marked routed), by counting ``page_viewed`` among the types with effects;
* ``batch``: the plain path for a batch, as ``POST /events`` with a list stores a run of
  such events (``EventStore.store_plain_many``, ``--batch`` events a transaction).

    .venv/bin/python -m bench.event_store [--events 2000] [--rounds 4] [--batch 50] [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/event_store.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event as sa_event

from bench import harness
from core.event import EventIn
from core.events.store import EventStore

CUSTOMERS = 200
JOURNEY = """
id: bench_store
name: Bench store
trigger: {event: purchase}
steps:
  - wait: 1d
"""


class _Statements:
    """Counts the SQL statements this thread sends, BEGIN and COMMIT aside (the drivers
    differ in how they send those)."""

    def __init__(self, db: Any) -> None:
        self.count = 0
        self._thread = threading.get_ident()
        sa_event.listen(db, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == self._thread and statement.split()[0].upper() not in ("BEGIN", "COMMIT"):
            self.count += 1


def _side(store: EventStore, counter: _Statements, events: list[EventIn], batch: int) -> tuple[float, int]:
    """CPU seconds and statements to store ``events``: one by one, as the router does
    (``batch`` 1), or ``batch`` at a time, as it does a request's run of plain events."""
    counter.count = 0
    started = time.thread_time()
    if batch == 1:
        for event in events:
            store.store(event, "bench", True)
    else:
        for first in range(0, len(events), batch):
            assert all(store.store_plain_many(events[first:first + batch], "bench"))  # every one stored
    return time.thread_time() - started, counter.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per side (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, each storing a share of every side")
    parser.add_argument("--batch", type=int, default=50, help="events a transaction on the batch side (default 50)")
    harness.add_database_url(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir, \
            harness.fresh_database(args.database_url, Path(workdir), "event_store") as db:
        catalog = harness.write_catalog(Path(workdir) / "journeys", {
            "settings.yaml": harness.settings_yaml("22:00", "06:00"), "bench_store.yaml": JOURNEY})
        harness.seed_customers(db, [f"c{i}" for i in range(CUSTOMERS)])
        stores = {"plain": EventStore(catalog, db), "full": EventStore(catalog, db), "batch": EventStore(catalog, db)}
        batches = {"plain": 1, "full": 1, "batch": args.batch}
        stores["full"]._deriving |= {"page_viewed"}  # a type with effects takes the full path
        counter = _Statements(db)
        for side, store in stores.items():  # connections, prepared statements, caches
            for warm in range(50):
                store.store(EventIn(id=f"warm-{side}-{warm}", type="page_viewed", customer_id=f"c{warm}"), "bench",
                            True)
        totals = {side: [0.0, 0] for side in stores}
        share = max(1, args.events // args.rounds)
        for round_ in range(args.rounds):
            for side in list(stores) if round_ % 2 == 0 else list(stores)[::-1]:
                events = [EventIn(id=f"{side}-{round_}-{n}", type="page_viewed", customer_id=f"c{n % CUSTOMERS}")
                          for n in range(share)]
                cpu, statements = _side(stores[side], counter, events, batches[side])
                totals[side][0] += cpu
                totals[side][1] += statements
        stored = share * args.rounds
        results = {side: {"events": stored, "cpu_ms_per_event": 1000 * cpu / stored,
                          "statements_per_event": statements / stored}
                   for side, (cpu, statements) in totals.items()}
        results["backend"] = harness.backend_name(args.database_url)  # type: ignore[assignment]

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{results['backend']}: {stored} page_viewed events per side, {args.rounds} interleaved rounds")
        for side in stores:
            figures = results[side]
            label = f"batch{args.batch}" if side == "batch" else side
            print(f"  {label:7} {figures['cpu_ms_per_event']:6.2f} ms CPU per event, "
                  f"{figures['statements_per_event']:4.1f} statements per event (BEGIN and COMMIT aside)")
    harness.print_load_average(to_stderr=args.json)
    ratio = results["plain"]["cpu_ms_per_event"] / results["full"]["cpu_ms_per_event"]
    batched = results["batch"]["cpu_ms_per_event"] / results["full"]["cpu_ms_per_event"]
    harness.print_headline(f"event store CPU per event, plain / full: {ratio:.2f}",
                           f"event store CPU per event, batch{args.batch} / full: {batched:.2f}", to_stderr=args.json)


if __name__ == "__main__":
    main()
