"""Payload encryption end to end on the real dev server: the commands and the worker seal
every payload (JOURNEYS_PAYLOAD_KEYS), so a history fetched from the server holds no
readable input, result or signal; a client with the key reads it, and so does the Web
UI through `journeys codec-server`."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage
from sqlmodel import select
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.history.v1 import History
from temporalio.client import Client

from core.clock import utcnow
from language.validate import load_catalog
from processes.codec import ENCODING, KEY_ID
from processes.codec_server import codec_app_from, serve_codec_until
from processes.settings import ServiceSettings
from processes.temporal import connect, connect_to
from processes.workers import build_workers
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Message
from tests.e2e.conftest import afternoon_zone, free_port, journeys_copy
from tests.e2e.test_cli_on_dev_server import cli, eventually
from tests.runtime.support import CountingSender

KEY = base64.b64encode(bytes(range(32))).decode()
CUSTOMER = "c-sealed-7"
TEMPORAL = Path(sys.executable).parent / "temporal"


def payloads_in(message: ProtoMessage) -> Iterator[Payload]:
    """Every payload in a history, except search attributes (the server indexes those: they
    are never encrypted, and hold ids only)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, ProtoMessage) and not isinstance(item, SearchAttributes):
                yield from payloads_in(item)


async def histories(client: Client) -> dict[str, History]:
    """Every run's history in the namespace (this module's own dev server), as the server holds it."""
    found = {}
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        found[f"{execution.id}@{execution.run_id}"] = History(events=(await handle.fetch_history()).events)
    return found


async def test_histories_on_the_server_hold_no_readable_payload(tmp_path: Path, dev_address: str) -> None:
    journeys = journeys_copy(tmp_path)
    database = f"sqlite:///{tmp_path / 'journeys.db'}"
    env = {"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DATABASE_URL": database, "JOURNEYS_DIR": str(journeys),
           "JOURNEYS_PAYLOAD_KEYS": f"k1:{KEY}"}
    settings = ServiceSettings.from_mapping(env)
    db = open_database(database)
    upgrade(db)
    sealed_client = await connect(settings)  # as the worker makes it: the codec comes with the settings
    sender = CountingSender()
    workers = build_workers(sealed_client, load_catalog(journeys), db, sender)
    running = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        done = await cli("customer", CUSTOMER, "--phone", "(201) 555-0123", "--first-name", "Ana", "--timezone",
                         afternoon_zone(utcnow()), "--consent", "opted_in", "--consent-text", "Reply YES", env=env)
        assert done.returncode == 0, done.stderr
        yes = await cli("inbound", "+12015550123", "yes", env=env)
        assert yes.returncode == 0, yes.stderr

        def welcome_sent() -> list[Message]:
            with session_scope(db) as session:
                return list(session.exec(select(Message).where(Message.step_id == "welcome",
                                                               Message.status == "sent")).all())

        assert await eventually(welcome_sent), "the welcome text went out (workflows ran on sealed payloads)"
    finally:
        for worker in workers:
            await worker.shutdown()
        for task in running:
            await task
        db.dispose()

    plain = await connect_to(dev_address)  # no codec: what the server, its database or a stranger sees
    found = await histories(plain)
    assert any(workflow_id.startswith("journey/welcome/") for workflow_id in found), sorted(found)
    every = [payload for history in found.values() for event in history.events for payload in payloads_in(event)]
    # The SDK's own bookkeeping of a local activity (its marker's "data": sequence number,
    # activity type, times) is not a payload of ours and stays plain; its result is sealed.
    bookkeeping = [payload for history in found.values() for event in history.events
                   if event.HasField("marker_recorded_event_attributes")
                   for payload in event.marker_recorded_event_attributes.details["data"].payloads]
    sealed = [payload for payload in every if payload not in bookkeeping]
    assert len(sealed) > len(found)  # inputs, activity arguments and results, signals
    assert {payload.metadata["encoding"] for payload in sealed} == {ENCODING}
    assert {payload.metadata[KEY_ID] for payload in sealed} == {b"k1"}
    raw = b"".join(payload.SerializeToString() for payload in sealed)
    for plaintext in (CUSTOMER.encode(), b"welcome", b"json/", b"+12015550123", b"Ana"):
        assert plaintext not in raw, plaintext
    plain_bookkeeping = b"".join(payload.SerializeToString() for payload in bookkeeping)
    assert CUSTOMER.encode() not in plain_bookkeeping and b"2015550123" not in plain_bookkeeping

    # With the key, the same history reads: the welcome run's input names its customer.
    [(welcome_id, welcome)] = [(key.split("@")[0], history) for key, history in found.items()
                               if key.startswith("journey/welcome/")]
    started = welcome.events[0].workflow_execution_started_event_attributes
    opened = await sealed_client.data_converter.payload_codec.decode(list(started.input.payloads))  # type: ignore[union-attr]
    assert opened[0].metadata["encoding"] == b"json/plain" and CUSTOMER.encode() in b"".join(p.data for p in opened)

    # The Web UI's codec endpoint, given the same payloads as protobuf JSON, decodes them.
    transport = httpx.ASGITransport(app=codec_app_from(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        answer = await http.post("/decode", headers={"X-Namespace": "default", "Origin": "http://localhost:8233"},
                                 json={"payloads": [MessageToDict(p) for p in started.input.payloads]})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://localhost:8233"
    [decoded] = answer.json()["payloads"]
    assert CUSTOMER in base64.b64decode(decoded["data"]).decode()

    # The `temporal` CLI speaks the same protocol to a running `journeys codec-server`.
    codec_port = free_port()
    served = ServiceSettings.from_mapping({**env, "JOURNEYS_CODEC_TOKEN": "codec-token-1"})
    stop = asyncio.Event()
    server = asyncio.create_task(serve_codec_until(served, "127.0.0.1", codec_port, stop))
    try:
        show = [str(TEMPORAL), "workflow", "show", "--address", dev_address, "--output", "json",
                "--workflow-id", welcome_id]
        sealed_json = await asyncio.to_thread(subprocess.run, show, capture_output=True, text=True, timeout=60)
        opened_json = await asyncio.to_thread(
            subprocess.run, [*show, "--codec-endpoint", f"http://127.0.0.1:{codec_port}",
                             "--codec-auth", "Bearer codec-token-1"], capture_output=True, text=True, timeout=60)
    finally:
        stop.set()
        await server
    assert sealed_json.returncode == 0 and opened_json.returncode == 0, sealed_json.stderr + opened_json.stderr

    def first_input(shown: str) -> tuple[bytes, bytes]:
        [payload] = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
        return base64.b64decode(payload["metadata"]["encoding"]), base64.b64decode(payload["data"])

    assert first_input(sealed_json.stdout)[0] == ENCODING
    encoding, data = first_input(opened_json.stdout)
    assert encoding == b"json/plain" and CUSTOMER.encode() in data
