"""Journey controls through the real workflow and workers on the time-skipping server,
on both databases: pause holds sends (then each goes once, at the resume), stop ends
runs with `stopped`, drain lets runs finish, a version's control leaves the others
running, and a control outlives a worker restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from core.journeys.controls import apply_control, set_control
from language.models import Message as MessageSpec
from store.db import session_scope
from store.tables import Enrollment, JourneyControl, Message
from tests.runtime.support import DIRECT_MOMENT, Run, consented_sender_activities, direct_call, write_journeys

PROMO = """
id: promo
name: Promo
trigger: {manual: true}
steps:
  - wait: 1d
  - id: hello
    send_sms: {text: "Hi from {{ brand }}"}
"""


async def _control(run: Run, command: str, version: str | None = None) -> int:
    applied = await apply_control(run.sim.db, run.sim.env.client, "promo", command, version=version, by="test",
                                  note="ticket 1")
    return applied.runs_signalled


async def _until(check: Callable[[], Any], cpu_seconds: float = 20.0, hang_seconds: float = 300.0) -> Any:
    """Poll until ``check()`` is truthy; bounded by this process's CPU time, not the wall clock
    (a loaded machine is slow, not wrong), and by a generous wall-clock guard against a hang:
    an idle process may take minutes to spend its CPU bound."""
    limit, hang = time.process_time() + cpu_seconds, time.monotonic() + hang_seconds
    while not (found := check()):
        assert time.process_time() < limit and time.monotonic() < hang, "never happened"
        await asyncio.sleep(0.05)
    return found


def _message(run: Run, customer: str) -> Message | None:
    found = run.messages(customer)
    return found[0] if found else None


def _outcome(run: Run, customer: str) -> tuple[str, str | None]:
    [row] = run.enrollments("promo", customer)
    return row.status, row.outcome


async def test_paused_admits_no_one_and_holds_the_send_until_resumed(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog) as run:
        await run.customer(id="c1")
        await run.customer(id="c2", phone="+12015550188")
        assert await run.enter("promo", "c1")
        assert await _control(run, "pause") == 1
        entry = await run.sim.enter_explained(catalog.journey("promo"), "c2")
        assert (entry.started, entry.reason) == (False, "journey paused")
        assert run.enrollments("promo", "c2") == []

        # The text was due at +1d: held ever since, asking again every hour. The resume comes
        # half-way between two re-checks: the time-skipping server cannot take a timer's
        # cancel in the task where that timer fired (temporalio/sdk-java#2606), which the
        # real server resolves, and the run would stall there.
        await run.advance(timedelta(days=1, hours=2, minutes=30))
        held = await _until(lambda: (m := _message(run, "c1")) is not None and m.status == "deferred" and m)
        assert held.reason == "journey_paused"
        assert sender.sent == []
        resumed_at = run.sim.clock

        assert await _control(run, "resume") == 1
        await _until(lambda: _outcome(run, "c1") == ("ended", "completed"))  # no time skipped to get there
        timeline = await run.timeline("promo", "c1")
        [sms] = [e for e in timeline["timeline"] if e["action"] == "sms"]
        assert sms["status"] == "sent"
        sent_at = datetime.fromisoformat(sms["at"].replace("Z", "+00:00"))
        assert timedelta(0) <= sent_at - resumed_at < timedelta(minutes=5)  # on the resume, not at the hourly re-check
        assert len(sender.sent) == 1  # once
        assert [m.status for m in run.messages("c1")] == ["sent"]
        assert timeline["outcome"] == "completed"
        assert await run.enter("promo", "c2")  # admitted again


async def test_stop_ends_every_run_as_stopped_and_admits_no_one_until_resumed(journeys_dir: Path, simulation,
                                                                              sender) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog) as run:
        for n, customer in enumerate(("c1", "c2", "c3")):
            await run.customer(id=customer, phone=f"+1201555010{n}")
        assert await run.enter("promo", "c1") and await run.enter("promo", "c2")
        assert await _control(run, "stop") == 2
        for customer in ("c1", "c2"):
            assert (await run.sim.result("promo", customer)).outcome == "stopped"
            assert _outcome(run, customer) == ("ended", "stopped")  # reports read enrollments
        assert sender.sent == []
        entry = await run.sim.enter_explained(catalog.journey("promo"), "c3")
        assert (entry.started, entry.reason) == (False, "journey stopped")
        await _control(run, "resume")
        assert await run.enter("promo", "c3")


async def test_drain_lets_a_waiting_run_finish_but_admits_nobody(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog) as run:
        await run.customer(id="c1")
        await run.customer(id="c2", phone="+12015550188")
        assert await run.enter("promo", "c1")
        await _control(run, "drain")
        entry = await run.sim.enter_explained(catalog.journey("promo"), "c2")
        assert (entry.started, entry.reason) == (False, "journey draining")
        result = await run.sim.result("promo", "c1")
        assert result.outcome == "completed"
        assert [e.details["status"] for e in result.timeline if e.action == "sms"] == ["sent"]
        assert len(sender.sent) == 1


async def test_stopping_one_version_leaves_the_others_running(journeys_dir: Path, tmp_path: Path,
                                                              simulation) -> None:
    old = write_journeys(journeys_dir, {"promo": PROMO})
    new = write_journeys(tmp_path / "edited", {"promo": PROMO.replace("Hi from", "Hello from")})
    old_version, new_version = old.journey("promo").version, new.journey("promo").version
    assert old_version != new_version
    async with simulation(new) as run:
        await run.customer(id="c-old")
        await run.customer(id="c-new", phone="+12015550188")
        await run.customer(id="c-later", phone="+12015550189")
        assert await run.sim.enter(old.journey("promo"), "c-old")  # entered before the edit went live
        assert await run.enter("promo", "c-new")
        assert await _control(run, "stop", version=old_version) == 1
        assert (await run.sim.result("promo", "c-old")).outcome == "stopped"
        assert await run.enter("promo", "c-later")  # the current version still admits
        assert (await run.sim.result("promo", "c-new")).outcome == "completed"
        with session_scope(run.sim.db, readonly=True) as session:
            outcomes = sorted((e.journey_version == old_version, e.outcome or "-") for e in session.exec(select(Enrollment)))
        assert outcomes == [(False, "-"), (False, "completed"), (True, "stopped")]


async def test_a_pause_outlives_a_worker_restart(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog) as run:
        await run.customer(id="c1")
        await run.customer(id="c2", phone="+12015550188")
        assert await run.enter("promo", "c1")
        await _control(run, "pause")
        await run.advance(timedelta(days=1, hours=2))  # past the send, and past a re-check of the hold
        await _until(lambda: (m := _message(run, "c1")) is not None and m.status == "deferred")
        clock = run.sim.clock
    async with simulation(catalog, start=clock) as run:  # new workers, new router: only the database remembers
        entry = await run.sim.enter_explained(catalog.journey("promo"), "c2")
        assert (entry.started, entry.reason) == (False, "journey paused")
        assert sender.sent == []
        with session_scope(run.sim.db, readonly=True) as session:
            [control] = session.exec(select(JourneyControl)).all()
        assert (control.journey_id, control.version, control.state, control.changed_by, control.note) == (
            "promo", "*", "paused", "test", "ticket 1")


async def test_the_send_activity_reads_the_control_from_the_database(journeys_dir: Path, db, sender) -> None:
    """What a fresh worker's send does for a run of a paused journey: hold it, then send once."""
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    activities = consented_sender_activities(db, catalog, sender)
    call = direct_call(MessageSpec(text="Hi"))  # journey promo, version "v"
    set_control(db, "promo", "paused", version="v", by="test")
    held = await activities.send_sms(call)
    assert (held.status, held.reason, held.defer_until) == ("deferred", "journey_paused",
                                                             DIRECT_MOMENT + timedelta(hours=1))
    set_control(db, "promo", "paused", version="other", by="test")
    set_control(db, "promo", "active", version="v", by="test")  # the version row wins over nothing else
    assert (await activities.send_sms(call)).status == "sent"
    assert len(sender.sent) == 1 and (await activities.send_sms(call)).status == "sent"  # once
    assert len(sender.sent) == 1


async def test_a_run_that_missed_the_stop_signal_ends_stopped_at_its_text(journeys_dir: Path, simulation,
                                                                           sender) -> None:
    """A run admitted as the stop was being sent is not among the runs told: the store's
    word at its text ends it `stopped` (before, it held the text at every hourly re-check
    for good)."""
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog) as run:
        await run.customer(id="c1")
        assert await run.enter("promo", "c1")
        set_control(run.sim.db, "promo", "stopped", by="test")  # stored, no signal sent
        # Time skips to the text at +1d. Without the store's word the run would hold its text
        # for ever (and this wait never end): the bound turns that into a failure.
        result = await asyncio.wait_for(run.sim.result("promo", "c1"), timeout=120)
        assert result.outcome == "stopped"
        assert _outcome(run, "c1") == ("ended", "stopped")
        assert sender.sent == []
