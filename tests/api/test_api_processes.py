"""`journeys api --processes 2`: two processes on one port, one migration before them,
and /metrics adding up what each of them counted."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx

from processes.dev import wait_for_server
from tests.api.api_process import running_api

TOKEN = "processes-token"


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _received(metrics: str) -> float:
    return sum(float(value) for value in re.findall(r'^journeys_events_received_total\{[^}]*\} (\S+)$', metrics,
                                                     re.MULTILINE))


async def test_two_processes_serve_one_port_and_their_metrics_add_up(dev_server: str, tmp_path: Path) -> None:
    await wait_for_server(dev_server)
    with running_api(dev_server, tmp_path, TOKEN, "--processes", "2", timeout=90) as api:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as http:
            deadline = time.monotonic() + 60
            while (await http.get("/healthz")).status_code != 200:  # every process has its services
                assert time.monotonic() < deadline, api.log.read_text()[-3000:]
                await asyncio.sleep(0.3)
            assert len(_children(api.process.pid)) >= 2  # uvicorn's two workers (and its spawn helper, if any)
            headers = {"Authorization": f"Bearer {TOKEN}"}

            async def post(n: int) -> int:
                # A connection each: the kernel hands them to both processes.
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=30) as own:
                    response = await own.post("/events", headers=headers, json={
                        "id": f"multi-{n}", "type": "page_viewed", "customer_id": f"c{n % 5}"})
                    return response.status_code

            assert await asyncio.gather(*(post(n) for n in range(40))) == [202] * 40
            for _ in range(4):  # whichever process answers the scrape, it counts both
                assert _received((await http.get("/metrics")).text) == 40
    log = api.log.read_text()
    assert "Traceback" not in log
    assert log.count("heap frozen") == 2, log[-3000:]  # each process, once its services are built
