"""A real `journeys api` process for the tests that need one (a real Temporal dev server
behind it): started on a free port with its own SQLite database and journeys, ready
once it accepts connections, stopped (SIGTERM, then SIGKILL) after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import free_port, journeys_copy


@dataclass
class ApiProcess:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def memory(self, field: str) -> int:
        """VmRSS (now) or VmHWM (the peak so far) of the server, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(field)


@contextmanager
def running_api(dev_server: str, tmp: Path, token: str, *args: str, env: dict[str, str] | None = None,
                timeout: float = 60) -> Iterator[ApiProcess]:
    """``journeys api --port <free> *args``."""
    port = free_port()
    environment = {**os.environ, "TEMPORAL_ADDRESS": dev_server, "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp / 'j.db'}",
                   "JOURNEYS_DIR": str(journeys_copy(tmp)), "JOURNEYS_API_TOKEN": token,
                   "JOURNEYS_PUBLIC_URL": f"http://127.0.0.1:{port}", **(env or {})}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "journeys"), "api", "--port", str(port), *args],
                                   env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield ApiProcess(port, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
