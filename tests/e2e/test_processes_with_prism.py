"""The whole thing as it runs in production: the API and the worker as their own
processes, a real Temporal dev server, and the real Twilio SDK sending to Prism
(which serves Twilio's own OpenAPI description and rejects malformed requests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Message
from tests.e2e.conftest import free_port, journeys_copy
from tests.messaging.prism import running_prism

BIN = Path(sys.executable).parent
ACCOUNT_SID = "AC" + "0" * 32
SERVICE_SID = "MG" + "1" * 32
RECEIPT = """
id: receipt
name: Order receipt
description: A transactional text on every purchase (sent at once, quiet hours do not apply).
trigger: {event: purchase}
reentry: always
sending: {purpose: transactional}
steps:
  - id: thanks
    send_sms: {text: "Nordic Shoes: thanks for order {{ trigger.properties.order_id }}!"}
"""


@pytest.fixture
def prism() -> Iterator[str]:
    with running_prism() as url:
        yield url


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the API exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"the API did not listen on {port}:\n{log.read_text()[-3000:]}")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(BIN / "journeys"), *args], env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_an_http_event_drives_a_journey_that_sends_through_twilio(tmp_path: Path, dev_address: str,
                                                                       prism: str) -> None:
    journeys = journeys_copy(tmp_path)
    (journeys / "receipt.yaml").write_text(textwrap.dedent(RECEIPT))
    database = f"sqlite:///{tmp_path / 'journeys.db'}"
    db = open_database(database)
    upgrade(db)
    port = free_port()
    env = {
        "TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DATABASE_URL": database, "JOURNEYS_DIR": str(journeys),
        "JOURNEYS_SMS_SENDER": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "secret",
        "TWILIO_API_BASE_URL": prism, "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
        "JOURNEYS_API_TOKEN": "e2e-token", "JOURNEYS_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    worker = _spawn(["worker"], env, tmp_path / "worker.log")
    api = _spawn(["api", "--port", str(port)], env, tmp_path / "api.log")
    try:
        _wait_for_port(port, api, tmp_path / "api.log")
        auth = {"Authorization": "Bearer e2e-token"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            profile = await http.put("/customers/c-42", headers=auth, json={"phone": "+1 (201) 555-0142"})
            assert profile.status_code == 200, profile.text
            posted = await http.post("/events", headers=auth, json={
                "id": "order-77", "type": "purchase", "customer_id": "c-42",
                "properties": {"amount": 120, "order_id": "77"}})
            assert posted.status_code == 202 and "receipt" in posted.json()["results"][0]["started"]

            def sent() -> list[Message]:
                with session_scope(db) as session:
                    return list(session.exec(select(Message).where(Message.step_id == "thanks",
                                                                   Message.status == "sent")).all())

            deadline = time.monotonic() + 30
            while not sent() and time.monotonic() < deadline:
                time.sleep(0.3)
            [message] = sent()
            assert message.body == "Nordic Shoes: thanks for order 77!"
            assert message.provider == "twilio"
            assert (message.provider_message_id or "").startswith("SM")  # Prism's answer, through the SDK
            health = await http.get("/healthz")
            assert health.json()["temporal"] == "ok"
        worker_log = (tmp_path / "worker.log").read_text()
        assert "+12015550142" not in worker_log  # no phone numbers in logs
    finally:
        _stop(api)
        _stop(worker)
        db.dispose()
