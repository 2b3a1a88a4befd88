"""The worker process: validate the journeys, migrate the database, keep the schedules
in step with the journeys directory, then run the workers until asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from activities.metrics import EngineMetrics
from core.journeys.schedules import ScheduleSource, journey_schedules, sync_schedules
from core.loyalty.maintenance import loyalty_schedules
from core.retention import retention_schedules
from core.segments.refresh import segment_schedules
from processes.heap import freeze_startup_heap
from processes.senders import build_email_sender
from processes.settings import ServiceSettings
from processes.shops import build_shops
from processes.temporal import metrics_runtime, register_search_attributes
from processes.versioning import adopt_if_first, deployment_config, promote
from processes.wiring import wire
from processes.worker_http import Readiness, endpoint_app, listen, serving
from processes.workers import build_workers
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.io import SEARCH_ATTRIBUTES
from workflows.outbox import RETIRED_SCHEDULES, SWEEPER_ID, EventSweeper, SweeperInput

log = logging.getLogger(__name__)


def schedule_sources(settings: ServiceSettings) -> list[ScheduleSource]:
    """Every schedule the engine keeps in step with the journeys directory."""
    return [partial(journey_schedules, fanout_per_second=settings.fanout_per_second), loyalty_schedules,
            segment_schedules, retention_schedules]


async def ensure_sweeper(client: Client) -> None:
    """Start the event sweeper unless it runs already (every worker asks; one runs)."""
    await client.start_workflow(EventSweeper.run, SweeperInput(), id=SWEEPER_ID, task_queue=JOURNEY_TASK_QUEUE,
                                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                static_summary="Routes events that were stored but never routed, every minute")


async def run_worker(settings: ServiceSettings, *, journeys_dir: Path | None = None,
                     stop: asyncio.Event | None = None, ready: asyncio.Event | None = None,
                     make_current: bool = False, keep_schedules: bool = True, freeze_heap: bool = False) -> None:
    """Run until ``stop`` is set (default: SIGINT or SIGTERM), then shut down gracefully;
    ``ready`` is set once the workers poll. With worker versioning, ``make_current`` makes
    this build the current one (`journeys dev`: one machine, the code it runs is the one).
    ``keep_schedules`` False: only poll, leave the schedules and the sweeper to another
    process (the children of `journeys worker --processes N` but the first). ``freeze_heap``:
    the process is this worker's (`journeys worker`): once set up, its heap is frozen
    (processes/heap.py).
    With JOURNEYS_WORKER_METRICS_PORT, serve /metrics, /healthz and /readyz
    (processes/worker_http.py) from the start to the end."""
    # Async activities do their database work in threads (asyncio.to_thread): give them
    # a pool sized for it rather than the default of a few threads per core.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="db"))
    metrics, readiness = EngineMetrics(), Readiness()
    async with contextlib.AsyncExitStack() as serving_endpoint:
        runtime = None
        if settings.worker_metrics_port is not None:
            sock = listen(settings.worker_metrics_host, settings.worker_metrics_port)
            runtime, sdk_metrics_url = metrics_runtime()
            await serving_endpoint.enter_async_context(
                serving(sock, endpoint_app(metrics.registry, readiness, sdk_metrics_url)))
            log.info("worker endpoint on %s:%d: /metrics, /healthz, /readyz", settings.worker_metrics_host,
                     settings.worker_metrics_port)
        await _run(settings, journeys_dir, stop, ready, runtime, metrics, readiness, make_current=make_current,
                   keep_schedules=keep_schedules, freeze_heap=freeze_heap)


async def _run(settings: ServiceSettings, journeys_dir: Path | None, stop: asyncio.Event | None,
               ready: asyncio.Event | None, runtime: Runtime | None, metrics: EngineMetrics,
               readiness: Readiness, *, make_current: bool, keep_schedules: bool, freeze_heap: bool) -> None:
    email_sender = build_email_sender(settings)  # a misconfigured relay fails before anything starts
    wiring = await wire(settings, journeys_dir=journeys_dir, runtime=runtime)
    client, catalog = wiring.client, wiring.catalog
    deployment = deployment_config(settings)
    bound = timedelta(seconds=settings.worker_shutdown_seconds)
    workers = build_workers(client, catalog, wiring.db, wiring.sender, router=wiring.router,
                            sms_per_second=settings.sms_per_second,
                            settle_after=timedelta(seconds=settings.settle_after_seconds),
                            secrets=settings.server_secrets(), graceful_shutdown=bound, metrics=metrics,
                            deployment=deployment, email_sender=email_sender, shops=build_shops(settings),
                            max_cached_workflows=settings.worker_max_cached_workflows)
    try:
        await register_search_attributes(client)
    except RPCError as err:  # e.g. a managed cluster where workers may not change the namespace
        log.warning("could not register the search attributes (%s): register %s in namespace %s by hand",
                    err.message, ", ".join(SEARCH_ATTRIBUTES), client.namespace)
    if keep_schedules:
        await sync_schedules(client, catalog, schedule_sources(settings), retired=RETIRED_SCHEDULES)
        await ensure_sweeper(client)
    log.info("worker running %d journeys: %s", len(catalog.journeys), ", ".join(sorted(catalog.journeys)))
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    if freeze_heap:
        log.info("heap frozen: %d objects kept out of garbage collection", freeze_startup_heap())
    running = [asyncio.create_task(worker.run()) for worker in workers]
    readiness.db, readiness.client, readiness.workers, readiness.running = wiring.db, client, workers, running
    stopped = asyncio.create_task(stop.wait())
    try:
        if deployment is not None:  # once the workers poll: the first build must become current
            version = deployment.version
            log.info("worker deployment %s, build %s", version.deployment_name, version.build_id)
            if make_current:
                await promote(client, version.deployment_name, version.build_id, wait=30.0)
            else:
                await adopt_if_first(client, version.deployment_name, version.build_id)
        if ready is not None:
            ready.set()
        await asyncio.wait([*running, stopped], return_when=asyncio.FIRST_COMPLETED)
        readiness.stopping = True  # /readyz says 503 from now on: send no more work here
        log.info("worker stopping: polling ends, activities in flight get %.0f s to finish", bound.total_seconds())
        await asyncio.gather(*(worker.shutdown() for worker in workers))
        log.info("worker stopped")
    finally:
        stopped.cancel()
        wiring.close()
    for task in running:
        if task.done() and task.exception():  # a worker that died, rather than was stopped
            raise task.exception()  # type: ignore[misc]
