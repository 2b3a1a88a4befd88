"""`journeys dev` as an operator runs it: a ready line with the URLs, a clear error for a
port in use, the Temporal state kept per database, everything stopped by SIGHUP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload

from processes.codec import EncryptionCodec, PayloadKeys
from processes.dev import temporal_state_file
from tests.e2e.conftest import free_port, journeys_copy

JOURNEYS = Path(sys.executable).parent / "journeys"


def _dev(tmp_path: Path, ports: dict[str, int], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [str(JOURNEYS), "dev", "--data-dir", str(tmp_path / "data"), "--journeys", str(journeys_copy(tmp_path))]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNEYS_", "TEMPORAL_", "TWILIO_"))}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**clean, **(env or {})}, start_new_session=True)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_dev_says_ready_serves_and_stops_everything_on_sighup(tmp_path: Path) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    dev = _dev(tmp_path, ports)
    lines: list[str] = []
    try:
        assert dev.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = dev.stdout.readline()
            assert line, "journeys dev ended before it was ready:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("ready:"):
                break
        assert lines[-1].strip() == f"ready: Web UI http://localhost:{ports['ui']}  API http://localhost:{ports['api']}"
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['api']}/healthz", timeout=10) as health:
            assert health.status == 200
        assert (tmp_path / "data" / "temporal-journeys.db").exists()  # named after its database
        os.killpg(dev.pid, signal.SIGHUP)  # the terminal closed
        rest, _ = dev.communicate(timeout=60)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    assert dev.returncode == 0, rest
    assert "stopped: worker, API and Temporal dev server" in rest
    assert not _accepts(ports["temporal"]) and not _accepts(ports["api"])


def _until_ready(dev: subprocess.Popen[str]) -> list[str]:
    assert dev.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = dev.stdout.readline()
        assert line, "journeys dev ended before it was ready:\n" + "".join(lines)
        lines.append(line)
        if line.startswith("ready:"):
            break
    return lines


def test_dev_with_payload_keys_runs_the_codec_server_and_the_web_ui_uses_it(tmp_path: Path) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port(), "codec": free_port()}
    key = base64.b64encode(bytes(32)).decode()
    dev = _dev(tmp_path, ports, {"JOURNEYS_PAYLOAD_KEYS": f"dev:{key}"})
    try:
        lines = _until_ready(dev)
        assert f"  Payloads          encrypted; Web UI decodes them through http://localhost:{ports['codec']}\n" in lines
        assert key not in "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['ui']}/api/v1/settings", timeout=10) as answer:
            assert json.load(answer)["Codec"]["Endpoint"] == f"http://localhost:{ports['codec']}"
        [sealed] = asyncio.run(EncryptionCodec(PayloadKeys.parse(f"dev:{key}")).encode(
            [Payload(metadata={"encoding": b"json/plain"}, data=b'"c-1"')]))
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['codec']}/decode", method="POST",
            data=json.dumps({"payloads": [MessageToDict(sealed)]}).encode(),
            headers={"Content-Type": "application/json", "Origin": f"http://localhost:{ports['ui']}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["Access-Control-Allow-Origin"] == f"http://localhost:{ports['ui']}"
            assert base64.b64decode(json.load(answer)["payloads"][0]["data"]) == b'"c-1"'
        os.killpg(dev.pid, signal.SIGTERM)
        rest, _ = dev.communicate(timeout=60)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    assert dev.returncode == 0, rest
    assert not _accepts(ports["codec"])


def test_a_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["api"]))
        taken.listen()
        dev = _dev(tmp_path, ports)
        out, _ = dev.communicate(timeout=60)
    assert dev.returncode == 1
    assert f"port {ports['api']} (HTTP API) is already in use" in out and "Traceback" not in out
    assert not _accepts(ports["temporal"])


def test_the_temporal_state_is_kept_per_database(tmp_path: Path) -> None:
    data = tmp_path / ".data"
    default = temporal_state_file(data, f"sqlite:///{data / 'journeys.db'}")
    postgres = temporal_state_file(data, "postgresql://postgres@127.0.0.1:5432/journeys")
    other = temporal_state_file(data, "postgresql://postgres@127.0.0.1:5432/other")
    assert default == data / "temporal-journeys.db"
    assert len({default, postgres, other}) == 3 and all(p.parent == data for p in (postgres, other))
    assert postgres == temporal_state_file(data, "postgres://postgres@127.0.0.1:5432/journeys")  # same database
