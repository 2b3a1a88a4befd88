"""Entries are never lost: the enrollment row and the workflow start cannot disagree
after a crash between them. A half-made entry is finished by whoever finds it next."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.event import EventIn
from tests.runtime.support import write_journeys

ONCE = """
id: once
name: Once
trigger: {event: signup}
reentry: never
steps:
  - wait: 1d
"""


def _break_start(router, *, reaches_server: bool) -> None:  # type: ignore[no-untyped-def]
    """The next start dies: before the request (a crash) or after the server took it
    (an answer lost on the way back)."""
    client = router.starter.client
    real = client.start_workflow

    async def start_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        client.start_workflow = real
        if reaches_server:
            await real(*args, **kwargs)
        raise RuntimeError("the process died here")

    client.start_workflow = start_then_fail


def _signup(run) -> EventIn:  # type: ignore[no-untyped-def]
    return EventIn(id="signup-1", type="signup", customer_id="sim-customer", occurred_at=run.sim.clock)


@pytest.mark.parametrize("reaches_server", [False, True])
async def test_a_retried_event_finishes_a_half_made_entry(journeys_dir: Path, simulation, reaches_server: bool) -> None:
    catalog = write_journeys(journeys_dir, {"once": ONCE})
    async with simulation(catalog) as run:
        await run.customer()
        router = run.sim.router
        _break_start(router, reaches_server=reaches_server)
        with pytest.raises(RuntimeError):
            await router.route(_signup(run))
        [half_made] = run.enrollments("once")
        assert half_made.status == "active" and half_made.started_at is None
        retried = await router.route(_signup(run))  # the shop retries; `reentry: never` must not refuse it
        assert retried.started == ["once"]
        [entry] = run.enrollments("once")
        assert entry.id == half_made.id and entry.status == "active" and entry.started_at is not None
        description = await run.sim.env.client.get_workflow_handle(entry.workflow_id).describe()
        assert await description.memo_value("enrollment") == entry.id


async def test_the_sweeper_finishes_a_half_made_entry_nobody_retries(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"once": ONCE})
    async with simulation(catalog) as run:
        await run.customer()
        router = run.sim.router
        _break_start(router, reaches_server=False)
        with pytest.raises(RuntimeError):
            await router.route(_signup(run))
        assert await router.starter.finish_half_made() == 1
        assert await router.starter.finish_half_made() == 0
        [entry] = run.enrollments("once")
        assert entry.started_at is not None
        assert (await run.timeline("once"))["outcome"] == "completed"


async def test_an_event_for_a_half_made_entry_starts_it_and_reaches_it(journeys_dir: Path, simulation) -> None:
    listens = ONCE.replace("reentry: never", "reentry: never\nexit_on: [{event: purchase}]")
    catalog = write_journeys(journeys_dir, {"once": listens})
    async with simulation(catalog) as run:
        await run.customer()
        router = run.sim.router
        _break_start(router, reaches_server=False)
        with pytest.raises(RuntimeError):
            await router.route(_signup(run))
        purchase = await router.route(EventIn(id="p-1", type="purchase", customer_id="sim-customer",
                                              occurred_at=run.sim.clock, properties={"amount": 5}))
        assert purchase.signalled == ["once"]
        assert (await run.timeline("once"))["outcome"] == "exited:purchase"
