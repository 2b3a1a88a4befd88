"""Run the journey workers against a Temporal server.

    python worker.py            (or: journeys worker)

Configuration comes from the environment: TEMPORAL_ADDRESS, JOURNEYS_DIR,
JOURNEYS_DATABASE_URL, JOURNEYS_SMS_SENDER (console | twilio), JOURNEYS_SMS_PER_SECOND.
The journeys directory is validated first: a worker never loads an invalid journey.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.service import RPCError

from engine.loyalty_maintenance import loyalty_schedules
from engine.runtime import build_workers
from engine.schedules import journey_schedules, sync_schedules
from engine.segments import segment_schedules
from engine.temporal import connect, register_search_attributes
from language.catalog import load_catalog
from messaging.senders import sender_from_env
from store.db import make_engine
from store.migrate import upgrade
from workflows.io import SEARCH_ATTRIBUTES
from workflows.outbox import sweep_schedules

# Every schedule the engine keeps in step with the journeys directory.
SCHEDULE_SOURCES = [journey_schedules, loyalty_schedules, segment_schedules, sweep_schedules]


async def run_worker(journeys_dir: Path | None = None, address: str | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (default: SIGINT or SIGTERM), then shut down gracefully."""
    # Async activities do their database work in threads (asyncio.to_thread): give them
    # a pool sized for it rather than the default of a few threads per core.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="db"))
    catalog = load_catalog(journeys_dir or Path(os.environ.get("JOURNEYS_DIR", "journeys")))
    engine = make_engine()
    upgrade(engine)
    client = await connect(address)
    rate = os.environ.get("JOURNEYS_SMS_PER_SECOND")
    workers = build_workers(client, catalog, engine, sender_from_env(catalog.settings),
                            sms_per_second=float(rate) if rate else None)
    try:
        await register_search_attributes(client)
    except RPCError as err:  # e.g. a managed cluster where workers may not change the namespace
        logging.getLogger(__name__).warning(
            "could not register the search attributes (%s): register %s in namespace %s by hand",
            err.message, ", ".join(SEARCH_ATTRIBUTES), client.namespace)
    await sync_schedules(client, catalog, SCHEDULE_SOURCES)
    logging.getLogger(__name__).info("worker running %d journeys: %s", len(catalog.journeys),
                                     ", ".join(sorted(catalog.journeys)))
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    running = [asyncio.create_task(worker.run()) for worker in workers]
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([*running, stopped], return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*(worker.shutdown() for worker in workers))
    stopped.cancel()
    for task in running:
        if task.done() and task.exception():  # a worker that died, rather than was stopped
            raise task.exception()  # type: ignore[misc]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker())
