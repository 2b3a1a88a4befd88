"""Prism serving Twilio's own OpenAPI description: the real SDK talks to it as to Twilio.

Reusable from any test folder:

    from prism import running_prism          # with tests/messaging on sys.path
    with running_prism() as url: ...         # url = "http://127.0.0.1:<port>"

Prism comes from package.json (`npm ci` at the repo root). When it is missing the
tests fail rather than skip: CI must exercise the real SDK against the real spec.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

REPO = Path(__file__).resolve().parents[2]
PRISM = REPO / "node_modules" / ".bin" / "prism"
TWILIO_SPEC = REPO / "tests" / "fixtures" / "twilio" / "twilio_api_v2010.json"


@contextlib.contextmanager
def running_prism(spec: Path = TWILIO_SPEC, startup_timeout: float = 90.0) -> Iterator[str]:
    """Start `prism mock` on a free local port, yield its base URL, stop it after."""
    if not PRISM.exists():
        pytest.fail(f"Prism is not installed ({PRISM} is missing): run `npm ci` in {REPO}",
                    pytrace=False)
    if not spec.exists():
        pytest.fail(f"the OpenAPI description {spec} is missing", pytrace=False)
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        # A session of its own, so stopping it stops node and anything it spawned.
        process = subprocess.Popen(
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, process, log, startup_timeout)
            yield url
        finally:
            _stop(process)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: IO[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prism exited with code {process.returncode}:\n{_tail(log)}", pytrace=False)
        try:
            urllib.request.urlopen(url + "/", timeout=1).close()
            return
        except urllib.error.HTTPError:  # any HTTP answer (404 here) means it is serving
            return
        except OSError:
            time.sleep(0.2)
    _stop(process)
    pytest.fail(f"Prism did not answer on {url} within {timeout:.0f}s:\n{_tail(log)}", pytrace=False)


def _tail(log: IO[bytes], size: int = 4000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-size:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
