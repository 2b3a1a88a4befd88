"""`journeys api --processes 2`: two processes on one port, one migration before them,
and /metrics adding up what each of them counted."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from processes.dev import wait_for_server
from tests.e2e.conftest import free_port, journeys_copy

TOKEN = "processes-token"


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _received(metrics: str) -> float:
    return sum(float(value) for value in re.findall(r'^journeys_events_received_total\{[^}]*\} (\S+)$', metrics,
                                                     re.MULTILINE))


async def test_two_processes_serve_one_port_and_their_metrics_add_up(dev_server: str, tmp_path: Path) -> None:
    await wait_for_server(dev_server)
    port = free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": dev_server, "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}",
           "JOURNEYS_DIR": str(journeys_copy(tmp_path)), "JOURNEYS_API_TOKEN": TOKEN,
           "JOURNEYS_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "journeys"), "api", "--port", str(port),
                                    "--processes", "2"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0 and (await http.get("/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.3)
            assert len(_children(process.pid)) >= 2  # uvicorn's two workers (and its spawn helper, if any)
            headers = {"Authorization": f"Bearer {TOKEN}"}

            async def post(n: int) -> int:
                # A connection each: the kernel hands them to both processes.
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as own:
                    response = await own.post("/events", headers=headers, json={
                        "id": f"multi-{n}", "type": "page_viewed", "customer_id": f"c{n % 5}"})
                    return response.status_code

            assert await asyncio.gather(*(post(n) for n in range(40))) == [202] * 40
            for _ in range(4):  # whichever process answers the scrape, it counts both
                assert _received((await http.get("/metrics")).text) == 40
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    assert "Traceback" not in log.read_text()
