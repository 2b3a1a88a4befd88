"""`journeys worker --processes N`: N worker processes on one machine, each a full
`journeys worker` polling the same task queues, under one parent.

- The parent validates the journeys and migrates the database once, then starts the
  children (`journeys worker --process-index i`). Child 0 also writes the schedules and
  starts the event sweeper; the others only poll, so N processes never race on them.
- SIGTERM or SIGINT to the parent reaches every child as SIGTERM: each stops polling and
  gives its activities JOURNEYS_WORKER_SHUTDOWN_SECONDS; a child still running
  ``KILL_GRACE`` seconds after that is killed. The parent exits 0 if every child did.
- A child that exits on its own (a crash, an OOM kill) is not restarted: the parent
  stops the others the same graceful way and exits 1, so the orchestrator (systemd,
  Kubernetes, ...) restarts the whole unit and sees the failure. A child that loses its
  parent (SIGKILL to the parent) is killed by the kernel (Linux PR_SET_PDEATHSIG).
- With JOURNEYS_WORKER_METRICS_PORT=P, child i serves its own /metrics, /healthz and
  /readyz on P+1+i; the parent serves /healthz (200 while every child runs) and /readyz
  (200 when every child's /readyz is) on P, for the orchestrator's probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from processes.settings import ServiceSettings, SettingsError
from processes.wiring import open_catalog, open_migrated_database
from processes.worker_http import CHECK_TIMEOUT, listen, serving

log = logging.getLogger(__name__)

KILL_GRACE = 10.0  # seconds past JOURNEYS_WORKER_SHUTDOWN_SECONDS before a child is killed
MAX_PROCESSES = 64


def child_port(settings: ServiceSettings, index: int) -> int | None:
    port = settings.worker_metrics_port
    return None if port is None else port + 1 + index


def check_pool(settings: ServiceSettings, processes: int) -> None:
    """Limits before work: the children's ports must exist."""
    last = child_port(settings, processes - 1)
    if last is not None and last > 65535:
        raise SettingsError(f"JOURNEYS_WORKER_METRICS_PORT={settings.worker_metrics_port} with --processes "
                            f"{processes}: the children need ports up to {last}, above 65535")


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Pool:
    def __init__(self, settings: ServiceSettings, processes: int) -> None:
        self.settings = settings
        self.size = processes
        self.children: list[asyncio.subprocess.Process] = []
        self.stopping = False

    async def start(self) -> None:
        for index in range(self.size):
            env = dict(os.environ)
            port = child_port(self.settings, index)
            if port is not None:
                env["JOURNEYS_WORKER_METRICS_PORT"] = str(port)
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from cli.main import run; run()", "worker", "--process-index", str(index),
                env=env, preexec_fn=_die_with_parent)
            self.children.append(child)
            log.info("worker process %d of %d started: pid %d%s", index + 1, self.size, child.pid,
                     f", endpoint on port {port}" if port is not None else "")

    async def stop(self) -> None:
        """SIGTERM to every child still running; SIGKILL to any still running past the bound."""
        self.stopping = True
        for child in self.children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        bound = self.settings.worker_shutdown_seconds + KILL_GRACE
        try:
            await asyncio.wait_for(asyncio.gather(*(child.wait() for child in self.children)), bound)
        except TimeoutError:
            for child in self.children:
                if child.returncode is None:
                    log.error("worker process pid %d still running %.0f s after SIGTERM: killed", child.pid, bound)
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
            await asyncio.gather(*(child.wait() for child in self.children))

    def _probe_host(self) -> str:
        host = self.settings.worker_metrics_host
        return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        if self.stopping:
            return False, {"status": "stopping"}
        host = self._probe_host()
        host = f"[{host}]" if ":" in host else host

        async def one(http: httpx.AsyncClient, index: int, child: asyncio.subprocess.Process) -> dict[str, object]:
            entry: dict[str, object] = {"process": index, "pid": child.pid}
            if child.returncode is not None:
                return {**entry, "status": f"exited {child.returncode}"}
            try:
                answer = await http.get(f"http://{host}:{child_port(self.settings, index)}/readyz")
                return {**entry, **answer.json()}
            except (httpx.HTTPError, ValueError) as err:
                return {**entry, "status": f"error: {type(err).__name__}"}

        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT + 1) as http:
            each = await asyncio.gather(*(one(http, i, c) for i, c in enumerate(self.children)))
        ready = len(each) == self.size and all(entry.get("status") == "ready" for entry in each)
        return ready, {"status": "ready" if ready else "unavailable", "processes": each}

    def app(self) -> Starlette:
        async def healthz(request: Request) -> Response:
            exited = [child.pid for child in self.children if child.returncode is not None]
            if exited and not self.stopping:
                return JSONResponse({"status": "child exited", "pids": exited}, status_code=503)
            return JSONResponse({"status": "ok", "processes": len(self.children)})

        async def readyz(request: Request) -> Response:
            ready, body = await self.readiness()
            return JSONResponse(body, status_code=200 if ready else 503)

        return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


async def run_pool(settings: ServiceSettings, processes: int) -> int:
    """Run ``processes`` workers until SIGTERM/SIGINT (exit code 0 when all stopped
    cleanly) or until one exits on its own (1)."""
    check_pool(settings, processes)
    open_catalog(settings)  # an invalid journeys directory stops the parent, before any child
    open_migrated_database(settings).dispose()  # migrated once, not N times at once
    pool = Pool(settings, processes)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as endpoint:
        if settings.worker_metrics_port is not None:
            sock = listen(settings.worker_metrics_host, settings.worker_metrics_port)
            await endpoint.enter_async_context(serving(sock, pool.app()))
        await pool.start()
        exits = [asyncio.create_task(child.wait()) for child in pool.children]
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([*exits, stopped], return_when=asyncio.FIRST_COMPLETED)
        died = [] if stop.is_set() else [(i, c) for i, c in enumerate(pool.children) if c.returncode is not None]
        for index, child in died:
            log.error("worker process %d (pid %d) exited with %s: stopping the others", index + 1, child.pid,
                      child.returncode)
        if not died:
            log.info("worker pool stopping: SIGTERM to %d processes", processes)
        await pool.stop()
        stopped.cancel()
    failed = died or any(child.returncode != 0 for child in pool.children)
    log.info("worker pool stopped%s", " (a process failed)" if failed else "")
    return 1 if failed else 0
