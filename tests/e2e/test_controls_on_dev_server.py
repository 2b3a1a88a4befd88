"""Journey controls as an operator types them (`journeys pause|resume|stop JOURNEY`,
`journeys controls`), on the real Temporal dev server and both databases: a held text
goes out once after the resume, from a worker started while it was held; a stopped run
ends `stopped`; the Web UI's `JourneyControl` search attribute; a time-based journey's
Temporal Schedule paused and unpaused with it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import select

from core.clock import utcnow
from core.journeys.schedules import journey_schedules, sync_schedules
from processes.temporal import connect_to
from processes.workers import build_workers
from store.db import session_scope
from store.tables import Enrollment, Message
from tests.e2e.conftest import afternoon_zone
from tests.e2e.test_cli_on_dev_server import cli
from tests.runtime.support import CountingSender, write_journeys

PROMO = """
id: promo
name: Promo
trigger: {manual: true}
steps:
  - wait_for: {event: go, timeout: 7d}  # the test says when: a timed wait raced the commands under load
  - id: hello
    send_sms: {text: "Hi from {{ brand }}"}
"""
LATER = """
id: later
name: Later
trigger: {manual: true}
steps:
  - wait: 1d
  - id: hello
    send_sms: {text: "Later from {{ brand }}"}
"""
FLASH = """
id: flash
name: Flash sale
trigger: {schedule: {cron: "0 10 * * 5", segment: vip, timezone: customer}}
reentry: always
steps: [{exit: done}]
"""


async def eventually(check: Any, timeout: float = 60.0) -> Any:
    """Poll until ``check()`` is truthy. The bound only ends a test that would otherwise
    hang (the dev server runs on the wall clock; a sticky queue takes seconds to expire)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await asyncio.to_thread(check)):
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.2)
    return value


def journey_texts(sender: CountingSender) -> list[str]:
    """The journeys' texts (the opt-in replies the `customer` command sends aside)."""
    return [s.body for s in sender.sent if s.body.startswith(("Hi from", "Later from"))]


def database_url(db: Engine) -> str:
    return db.url.render_as_string(hide_password=False)


async def started(workers: list[Any]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(worker.run()) for worker in workers]


async def stopped(workers: list[Any], tasks: list[asyncio.Task[None]]) -> None:
    for worker in workers:
        await worker.shutdown()
    for task in tasks:
        await task


async def test_pause_holds_the_text_across_a_worker_restart_and_stop_ends_runs(tmp_path: Path, dev_address: str,
                                                                              db: Engine) -> None:
    journeys = tmp_path / "journeys"
    catalog = write_journeys(journeys, {"promo": PROMO, "later": LATER})
    env = {"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DATABASE_URL": database_url(db), "JOURNEYS_DIR": str(journeys)}
    client = await connect_to(dev_address)
    zone = afternoon_zone(utcnow())  # mid-afternoon for the customer: quiet hours never hold the text
    first_sender, second_sender = CountingSender(), CountingSender()
    workers = build_workers(client, catalog, db, first_sender)
    tasks = await started(workers)
    try:
        for customer, phone in (("c1", "(201) 555-0123"), ("c2", "(201) 555-0124")):
            made = await cli("customer", customer, "--phone", phone, "--timezone", zone, "--consent", "opted_in",
                             "--consent-text", "Reply YES for texts", env=env)
            assert made.returncode == 0, made.stdout + made.stderr
        entered = await cli("enroll", "promo", "--customer", "c1", env=env)
        assert entered.returncode == 0, entered.stdout + entered.stderr

        paused = await cli("pause", "promo", "--note", "ticket-7", env=env)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert paused.stdout.strip() == "promo (every version): paused; 1 running runs told"
        listed = await cli("controls", env=env)
        assert listed.returncode == 0, listed.stderr
        [row] = [line for line in listed.stdout.splitlines() if "promo" in line]
        assert [cell.strip() for cell in row.split("│")[1:4]] == ["promo", "all", "paused"]
        assert "ticket-7" in row
        refused = await cli("enroll", "promo", "--customer", "c2", env=env)
        assert refused.returncode == 1 and "journey paused" in refused.stderr, refused.stdout + refused.stderr

        # The Web UI's query finds the paused run (no customer data in the id).
        async def paused_runs(expected: list[str]) -> list[str]:
            deadline = asyncio.get_running_loop().time() + 60
            while (found := [w.id async for w in client.list_workflows('JourneyControl = "paused"')]) != expected:
                assert asyncio.get_running_loop().time() < deadline, found
                await asyncio.sleep(0.2)
            return found

        assert await paused_runs(["journey/promo/c1"])

        def held() -> Message | None:
            with session_scope(db, readonly=True) as session:
                row = session.exec(select(Message).where(Message.customer_id == "c1", Message.step_id == "hello")).first()
                return row if row is not None and row.status == "deferred" else None

        go = await cli("event", "go", "--customer", "c1", env=env)
        assert go.returncode == 0, go.stdout + go.stderr
        message = await eventually(held)  # the run went on to its text: held
        assert message.reason == "journey_paused"
        assert journey_texts(first_sender) == []

        # The worker goes away while the text is held; a new one (a deploy) takes over.
        await stopped(workers, tasks)
        workers = build_workers(client, catalog, db, second_sender)
        tasks = await started(workers)
        resumed = await cli("resume", "promo", env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert resumed.stdout.strip() == "promo (every version): active; 1 running runs told"

        def outcome(journey: str, customer: str) -> tuple[str, str | None] | None:
            with session_scope(db, readonly=True) as session:
                run = session.exec(select(Enrollment).where(Enrollment.journey_id == journey,
                                                            Enrollment.customer_id == customer)).first()
                return (run.status, run.outcome) if run is not None and run.status == "ended" else None

        assert await eventually(lambda: outcome("promo", "c1")) == ("ended", "completed")
        assert journey_texts(second_sender) == ["Hi from Nordic Shoes"] and journey_texts(first_sender) == []
        with session_scope(db, readonly=True) as session:
            assert [m.status for m in session.exec(select(Message).where(Message.customer_id == "c1", Message.step_id == "hello"))] == ["sent"]
        assert await paused_runs([]) == []
        [row] = [line for line in (await cli("controls", env=env)).stdout.splitlines() if "promo" in line]
        assert [cell.strip() for cell in row.split("│")[1:4]] == ["promo", "all", "active"]

        # Stop: a waiting run ends at once, outcome `stopped` (what reports read).
        entered = await cli("enroll", "later", "--customer", "c2", env=env)
        assert entered.returncode == 0, entered.stdout + entered.stderr
        stop = await cli("stop", "later", "--note", "wrong link", env=env)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert stop.stdout.strip() == "later (every version): stopped; 1 running runs told"
        assert await eventually(lambda: outcome("later", "c2")) == ("ended", "stopped")
        assert journey_texts(second_sender) == ["Hi from Nordic Shoes"]  # nothing more: the stopped run never texted
        unknown = await cli("pause", "nope", env=env)
        assert unknown.returncode == 2 and "nope" in unknown.stderr, unknown.stdout + unknown.stderr
    finally:
        await stopped(workers, tasks)


async def test_pausing_a_scheduled_journey_pauses_its_temporal_schedule(tmp_path: Path, dev_address: str,
                                                                      db: Engine) -> None:
    journeys = tmp_path / "journeys"
    catalog = write_journeys(journeys, {"flash": FLASH})
    env = {"TEMPORAL_ADDRESS": dev_address, "JOURNEYS_DATABASE_URL": database_url(db), "JOURNEYS_DIR": str(journeys)}
    client = await connect_to(dev_address)
    await sync_schedules(client, catalog, [journey_schedules])
    handle = client.get_schedule_handle("journey-schedule/flash")
    assert not (await handle.describe()).schedule.state.paused

    paused = await cli("pause", "flash", "--note", "ticket-9", env=env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert paused.stdout.strip() == "flash (every version): paused; 0 running runs told; schedule paused"
    state = (await handle.describe()).schedule.state
    assert state.paused and state.note == "journey paused: ticket-9"
    # A worker restart (schedules synced again) keeps the pause.
    await sync_schedules(client, catalog, [journey_schedules])
    assert (await handle.describe()).schedule.state.paused

    resumed = await cli("resume", "flash", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.strip() == "flash (every version): active; 0 running runs told; schedule unpaused"
    assert not (await handle.describe()).schedule.state.paused

    # A control of one version leaves the schedule alone: other versions may still fire.
    version = catalog.journey("flash").version
    one = await cli("pause", "flash", "--version", version, env=env)
    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.strip() == f"flash (version {version}): paused; 0 running runs told"
    assert not (await handle.describe()).schedule.state.paused

    # A schedule an operator paused by hand stays theirs through a journey's pause and resume.
    await cli("resume", "flash", env=env)
    await handle.pause(note="paused by hand for the sale's new banner")
    for command, state in (("pause", "paused"), ("resume", "active")):
        kept = await cli(command, "flash", env=env)
        assert kept.returncode == 0, kept.stdout + kept.stderr
        assert kept.stdout.strip() == f"flash (every version): {state}; 0 running runs told; schedule left paused"
    state = (await handle.describe()).schedule.state
    assert state.paused and state.note == "paused by hand for the sale's new banner"
    await handle.delete()  # the dev server is shared by the module's tests
