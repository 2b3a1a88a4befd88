"""`journeys worker --processes 2` as a real process on the real dev server: both children
run workflow tasks and sends, every customer's journey runs once and every text goes out
once; the parent's /readyz aggregates the children's; SIGTERM to the parent stops both
gracefully (exit 0); a child killed with SIGKILL makes the parent stop the other and
exit 1 (no restart: the orchestrator restarts the unit)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import System, free_port_block, system, tail
from tests.faults.test_scenarios import judged

BOUND = 10  # JOURNEYS_WORKER_SHUTDOWN_SECONDS
STARTED = re.compile(r"worker process (\d) of 2 started: pid (\d+)")


def pool_env() -> tuple[int, dict[str, str]]:
    port = free_port_block(3)  # the parent's endpoint, then its two children's
    return port, {"JOURNEYS_WORKER_METRICS_PORT": str(port), "JOURNEYS_WORKER_METRICS_HOST": "127.0.0.1",
                  "JOURNEYS_WORKER_SHUTDOWN_SECONDS": str(BOUND)}


def child_pids(sut: System) -> list[int]:
    found = STARTED.findall((sut.workdir / "worker.log").read_text(errors="replace"))
    return [int(pid) for _, pid in sorted(found)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until_ready(port: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=8) as http:
        while True:
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/readyz")
                if answer.status_code == 200:
                    return dict(answer.json())
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the pool's /readyz never answered 200"
            await asyncio.sleep(0.5)


async def workflow_task_identities(sut: System) -> Counter[str]:
    """Which worker identity (pid@host) completed each workflow task, over every run."""
    client = await sut.client()
    identities: Counter[str] = Counter()
    for wid, _ in await sut.runs():
        history = await client.get_workflow_handle(wid).fetch_history()
        for event in history.events:
            if event.HasField("workflow_task_completed_event_attributes"):
                identities[event.workflow_task_completed_event_attributes.identity] += 1
    return identities


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_share_the_work_and_stop_together(tmp_path: Path, backend: str) -> None:
    async with system(tmp_path, backend, customers=24, wait="2s") as sut:
        port, env = pool_env()
        sut.env.update(env)
        await sut.start(worker=False)
        parent = await sut.start_worker(processes=2)
        pids = child_pids(sut)
        assert len(pids) == 2 and parent.pid not in pids, pids
        body = await until_ready(port)
        assert [entry["pid"] for entry in body["processes"]] == pids  # type: ignore[union-attr]

        await sut.post_events()
        assert await sut.settle(), "the runs did not close"
        judged(await sut.verdict())  # each journey once, each text once, points once

        host = socket.gethostname()
        ours = {f"{pid}@{host}" for pid in pids}
        sends, tasks = await sut.send_identities(), await workflow_task_identities(sut)
        assert set(sends) == ours, f"sends per process: {sends}, children {ours}"
        assert set(tasks) == ours, f"workflow tasks per process: {tasks}, children {ours}"

        asked = time.monotonic()
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(parent.wait, BOUND + 20)
        assert code == 0, tail(sut.workdir / "worker.log")
        assert time.monotonic() - asked < BOUND + 5
        assert not any(alive(pid) for pid in pids)
        log = (sut.workdir / "worker.log").read_text()
        assert log.count("worker stopped") == 2 and "worker pool stopped" in log, tail(sut.workdir / "worker.log")
        assert log.count("heap frozen") == 2  # each child, once set up (processes/heap.py)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_child_that_dies_stops_the_pool_with_exit_1(tmp_path: Path, backend: str) -> None:
    async with system(tmp_path, backend, customers=1) as sut:
        port, env = pool_env()
        sut.env.update(env)
        await sut.start(worker=False)
        parent = await sut.start_worker(processes=2)
        first, second = child_pids(sut)
        await until_ready(port)

        os.kill(second, signal.SIGKILL)
        code = await asyncio.to_thread(parent.wait, BOUND + 20)
        assert code == 1, tail(sut.workdir / "worker.log")
        assert not alive(first)
        log = (sut.workdir / "worker.log").read_text()
        assert f"worker process 2 (pid {second}) exited with -9: stopping the others" in log, log[-3000:]
        assert log.count("worker stopped") == 1  # the other one stopped gracefully
