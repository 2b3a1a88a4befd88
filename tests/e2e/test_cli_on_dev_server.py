"""End to end on the real Temporal dev server: the shipped journeys, a running worker,
and the commands a user types (`journeys customer`, `journeys event`, `journeys enroll`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

from core.clock import utcnow
from core.sms.rules import quiet_hours_end
from language.validate import load_catalog
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import ConsentRecord, Customer, Enrollment, Message
from tests.e2e.conftest import afternoon_zone, journeys_copy
from tests.runtime.support import CountingSender

JOURNEYS = Path(sys.executable).parent / "journeys"


async def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command in a thread: the workers in this event loop keep working meanwhile."""
    return await asyncio.to_thread(subprocess.run, [str(JOURNEYS), *args], env={**os.environ, **env},
                                   capture_output=True, text=True, timeout=60)


async def eventually(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_opt_in_from_the_cli_starts_welcome_and_sends(tmp_path: Path, dev_address: str) -> None:
    journeys = journeys_copy(tmp_path)
    database = f"sqlite:///{tmp_path / 'journeys.db'}"
    env = {"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DATABASE_URL": database, "JOURNEYS_DIR": str(journeys)}
    db = open_database(database)
    upgrade(db)
    client = await connect_to(dev_address)
    sender = CountingSender()
    catalog = load_catalog(journeys)
    workers = build_workers(client, catalog, db, sender)
    # The dev server runs on the wall clock and the shipped quiet hours apply: give the
    # customer a zone where it is now mid-afternoon, so the welcome is due at once.
    zone = afternoon_zone(utcnow())
    assert quiet_hours_end(utcnow(), ZoneInfo(zone), catalog.settings.quiet_hours) is None
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        bad = await cli("customer", "c-e2e", "--phone", "12345", env=env)
        assert bad.returncode == 2 and "--phone" in bad.stderr
        done = await cli("customer", "c-e2e", "--phone", "(201) 555-0123", "--first-name", "Ana", "--timezone",
                   zone, "--consent", "opted_in", "--consent-text", "Reply YES for texts", env=env)
        assert done.returncode == 0, done.stderr
        # The shipped settings ask for double opt-in: the confirmation text goes out (a
        # Reply workflow: the worker sends it) and the customer is pending until they say YES.
        assert any("reply YES to get loyalty texts" in s.body for s in sender.sent) and "pending" not in done.stderr
        yes = await cli("inbound", "+12015550123", "yes", env=env)
        assert yes.returncode == 0 and "opt-in from c-e2e" in yes.stdout, yes.stdout + yes.stderr

        def welcome_sent() -> list[Message]:
            with session_scope(db) as session:
                return list(session.exec(select(Message).where(Message.step_id == "welcome",
                                                               Message.status == "sent")).all())

        [message] = await eventually(welcome_sent)
        assert message.customer_id == "c-e2e"
        assert (message.body or "").startswith("Welcome to Nordic Shoes Rewards, Ana! Here's 10% off")
        assert sender.sent[0].to == "+12015550123"
        with session_scope(db) as session:
            evidence = session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == "c-e2e")
                                    .order_by(ConsentRecord.id)).all()
            assert [(e.status, e.source) for e in evidence] == [("pending", "cli"), ("opted_in", "sms_keyword")]
            assert evidence[0].disclosure == "Reply YES for texts"
            assert (customer := session.get(Customer, "c-e2e")) is not None and customer.timezone == zone
        # Ops find the run in the Web UI by journey and customer; no PII in the id.
        found = [w async for w in client.list_workflows('JourneyId = "welcome" AND CustomerId = "c-e2e"')]
        assert [w.id for w in found] == ["journey/welcome/c-e2e"]

        # An event from the command line reaches the same path: a purchase starts post_purchase.
        event = await cli("event", "purchase", "--customer", "c-e2e", "--prop", "amount=80", "--prop", "order_id=o-1",
                    env=env)
        assert event.returncode == 0, event.stderr
        assert "post_purchase" in event.stdout
        manual = await cli("enroll", "vip_flash_sale", "--customer", "c-e2e", env=env)
        assert manual.returncode == 0, manual.stderr
        # Not entered: the command says why (welcome's run is still waiting for its second text).
        again = await cli("enroll", "welcome", "--customer", "c-e2e", env=env)
        assert again.returncode == 1
        assert "c-e2e was not entered into welcome: already in this journey" in again.stderr

        def enrolled() -> set[str]:
            with session_scope(db) as session:
                return {e.journey_id for e in session.exec(select(Enrollment))}

        assert {"welcome", "post_purchase", "vip_flash_sale"} <= await eventually(
            lambda: {"welcome", "post_purchase", "vip_flash_sale"} <= enrolled() and enrolled())
    finally:
        for worker in workers:
            await worker.shutdown()
        for task in tasks:
            await task
        db.dispose()
