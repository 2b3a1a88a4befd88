"""The worker's own HTTP endpoint (JOURNEYS_WORKER_METRICS_PORT), for Prometheus and an
orchestrator's probes:

- ``/metrics``: the Temporal SDK's series (read from the SDK's exporter on the loopback
  interface) followed by the engine's own (activities/metrics.py), one Prometheus text;
- ``/healthz``: 200 while the process answers (a liveness probe);
- ``/readyz``: 200 once the workers poll, Temporal answers its health check and the
  database ``SELECT 1``; 503 while starting, stopping, or when one of them fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.worker import Worker

from processes.http import _EmbeddedServer
from processes.settings import SettingsError
from store.db import Database, session_scope

CHECK_TIMEOUT = 3.0  # seconds per readiness check: a probe must answer before its own timeout


@dataclass
class Readiness:
    """What /readyz looks at; the worker fills it in as it starts and stops."""

    db: Database | None = None
    client: Client | None = None
    workers: Sequence[Worker] = ()
    running: Sequence[asyncio.Task[None]] = ()
    stopping: bool = False

    async def check(self) -> tuple[bool, dict[str, str]]:
        if self.stopping:
            return False, {"status": "stopping"}
        if self.db is None or self.client is None or not self.workers:
            return False, {"status": "starting"}
        database, temporal = await asyncio.gather(self._database(self.db), self._temporal(self.client))
        checks = {"database": database, "temporal": temporal, "workers": self._workers()}
        ready = all(value == "ok" for value in checks.values())
        return ready, {"status": "ready" if ready else "unavailable", **checks}

    @staticmethod
    async def _database(db: Database) -> str:
        def select_one() -> None:
            with session_scope(db, readonly=True) as session:
                session.execute(text("SELECT 1"))
        try:
            await asyncio.wait_for(asyncio.to_thread(select_one), CHECK_TIMEOUT)
            return "ok"
        except Exception as err:  # a probe reports, it does not raise
            return f"error: {type(err).__name__}"

    @staticmethod
    async def _temporal(client: Client) -> str:
        try:
            healthy = await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT))
            return "ok" if healthy else "error: not serving"
        except Exception as err:
            return f"error: {type(err).__name__}"

    def _workers(self) -> str:
        stopped = [worker.task_queue for worker, task in zip(self.workers, self.running, strict=True)
                   if not worker.is_running or task.done()]
        return "ok" if not stopped else f"error: not polling {', '.join(stopped)}"


def _sdk_metrics(url: str | None) -> bytes:
    if url is None:
        return b""
    with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT) as answer:
        return bytes(answer.read())


def endpoint_app(registry: CollectorRegistry, readiness: Readiness, sdk_metrics_url: str | None) -> Starlette:
    async def metrics(request: Request) -> Response:
        try:
            sdk = await asyncio.to_thread(_sdk_metrics, sdk_metrics_url)
        except OSError:  # the engine's series still answer; the gap shows as missing SDK series
            sdk = b""
        return Response(sdk + generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, body = await readiness.check()
        return JSONResponse(body, status_code=200 if ready else 503)

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz)])


def listen(host: str, port: int) -> socket.socket:
    """Bound before the worker starts: a port in use stops it with the variable named."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise SettingsError(f"JOURNEYS_WORKER_METRICS_PORT={port}: cannot listen on {host}:{port} "
                            f"({err.strerror or err})") from None
    return sock


@contextlib.asynccontextmanager
async def serving(sock: socket.socket, app: Starlette) -> AsyncIterator[None]:
    """Serve ``app`` on ``sock`` in this event loop while the block runs."""
    server = _EmbeddedServer(uvicorn.Config(app, log_config=None, access_log=False, log_level="warning",
                                            lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        sock.close()
