"""Entering and leaving journeys: reentry, audience, one run at a time, deduplicated
signals, pinned versions, goals, and the event path's own rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.event import EventIn
from core.events.router import EventRouter
from tests.runtime.support import at, sms, write_journeys
from workflows.io import EVENT_SIGNAL, EventSignal, workflow_id

SHORT = """
id: short
name: Short
trigger: {{event: signup}}
reentry: {reentry}
steps:
  - wait: 1d
"""


@pytest.mark.parametrize(("reentry", "entries"), [("never", [True, False, False]), ("7d", [True, False, True]),
                                                  ("always", [True, True, True])])
async def test_reentry_rules(journeys_dir: Path, simulation, reentry: str, entries: list[bool]) -> None:
    catalog = write_journeys(journeys_dir, {"short": SHORT.format(reentry=reentry)})
    async with simulation(catalog) as run:
        await run.customer()
        got = [await run.enter("short")]
        for offset in ("3d", "9d"):
            await run.at(f"noop@+{offset}")  # let time pass; the previous run has ended
            got.append(bool((await run.sim.router.route(EventIn(
                id=f"again-{offset}", type="signup", customer_id="sim-customer",
                occurred_at=run.sim.clock))).started))
    assert got == entries


async def test_never_two_runs_of_one_journey_at_once(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"short": SHORT.format(reentry="always")})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("short")
        second = await run.sim.router.route(EventIn(id="again", type="signup", customer_id="sim-customer",
                                                    occurred_at=run.sim.clock))
        assert second.started == []
        assert len(run.enrollments("short")) == 1


AUDIENCE = """
id: buyers
name: Buyers only
trigger: {event: signup, where: "event.properties.channel == 'shop'"}
audience: "customer.orders_count >= 1"
steps:
  - exit: entered
"""


@pytest.mark.parametrize(("orders", "channel", "entered"), [(1, "shop", True), (0, "shop", False),
                                                            (1, "web", False)])
async def test_trigger_where_and_audience(journeys_dir: Path, simulation, orders: int, channel: str,
                                          entered: bool) -> None:
    catalog = write_journeys(journeys_dir, {"buyers": AUDIENCE})
    async with simulation(catalog) as run:
        await run.customer(orders=[{"at": "-5d", "amount": 10}] * orders)
        assert await run.enter("buyers", trigger=f'signup {{"channel": "{channel}"}}') is entered


ASK = """
id: survey
name: Survey
trigger: {event: purchase}
steps:
  - id: nps
    ask:
      text: "0-10?"
      expect: {type: integer, min: 0, max: 10}
      timeout: 1d
      reprompt: "A number please"
"""


async def test_a_signal_delivered_twice_counts_once(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"survey": ASK})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("survey")
        entry = await run.at("reply:nps@+1h not a number")
        assert entry["event"] == "sms_replied"
        # The router, retried, signals the same stored reply again (twice): it must count once.
        from sqlmodel import select

        from store.db import session_scope
        from store.tables import Event

        with session_scope(run.sim.db) as session:
            reply_id = session.exec(select(Event.id).where(Event.type == "sms_replied")).one()
        handle = run.sim.env.client.get_workflow_handle(workflow_id("survey", "sim-customer"))
        for _ in range(2):
            await handle.signal(EVENT_SIGNAL, EventSignal(event_id=reply_id, type="sms_replied"))
        # And an event id the router already stored is never routed twice.
        again = await run.sim.router.route(EventIn(id="simulation:trigger:sim-customer:2026-03-02T15:00:00+00:00",
                                                   type="purchase", customer_id="sim-customer"))
        assert again.duplicate
        timeline = await run.timeline("survey")
    assert [e["action"] for e in timeline["timeline"]].count("invalid_reply") == 1
    assert len(sender.sent) == 2  # the question and one reprompt


VERSIONED = """
id: promo
name: Promo
trigger: {{event: signup}}
reentry: always
steps:
  - wait: 2d
  - id: offer
    send_sms: {{text: "{text}"}}
"""


async def test_an_edited_journey_does_not_change_a_customer_in_flight(journeys_dir: Path, simulation) -> None:
    first = write_journeys(journeys_dir, {"promo": VERSIONED.format(text="Version one")})
    async with simulation(first) as run:
        await run.customer(id="early")
        await run.customer(id="late")
        assert await run.enter("promo", customer="early")
        await run.at("noop@+1d")
        # A marketer edits the file; the new catalog goes live for new entries.
        edited = write_journeys(journeys_dir, {"promo": VERSIONED.format(text="Version two")})
        assert edited.journey("promo").version != first.journey("promo").version
        run.sim.router = EventRouter(edited, run.sim.db, run.sim.env.client, simulated=True,
                                     clock_offset_seconds=run.sim.router.starter.clock_offset_seconds)
        assert (await run.sim.router.route(EventIn(id="late-signup", type="signup", customer_id="late",
                                                   occurred_at=run.sim.clock))).started == ["promo"]
        early = await run.timeline("promo", customer="early")
        late = await run.timeline("promo", customer="late")
    assert [e["text"] for e in sms(early)] == ["Version one"]
    assert early["version"] == first.journey("promo").version
    assert [e["text"] for e in sms(late)] == ["Version two"]


GOAL = """
id: nudge
name: Nudge
trigger: {event: signup}
goal: {event: purchase, within: 7d, value: "event.properties.amount"}
steps:
  - id: nudge
    send_sms: {text: "Come back!"}
"""


async def test_goal_conversion_is_recorded_after_the_journey(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"nudge": GOAL})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("nudge")
        await run.timeline("nudge")
        await run.at('purchase@+2d {"amount": 59.5}')
        [enrollment] = run.enrollments("nudge")
    assert enrollment.converted_at is not None and enrollment.conversion_value == 59.5
    assert enrollment.converted_at.isoformat().replace("+00:00", "Z") == at("2d")


def test_event_fields_are_validated_with_their_names() -> None:
    with pytest.raises(ValidationError) as err:
        EventIn(id="e1", type="purchase", customer_id="ana@example.com")
    assert err.value.errors()[0]["loc"] == ("customer_id",)
    with pytest.raises(ValidationError) as err:
        EventIn(id="e1", type="purchase", customer_id="+15551234567")
    assert "phone" in str(err.value)
    with pytest.raises(ValidationError) as err:
        EventIn(id="e1", type="Purchase!", customer_id="c1")
    assert err.value.errors()[0]["loc"] == ("type",)
    with pytest.raises(ValidationError) as err:
        EventIn(id="e1", type="purchase", customer_id="c1", occurred_at=datetime(2026, 1, 1))
    assert err.value.errors()[0]["loc"] == ("occurred_at",)
    assert EventIn(id="e1", type="purchase", customer_id="c-1", occurred_at=datetime(2026, 1, 1, tzinfo=UTC))


async def test_purchases_update_derived_data_once(journeys_dir: Path, db, env) -> None:
    catalog = write_journeys(journeys_dir, {"nudge": GOAL})
    router = EventRouter(catalog, db, env.client)
    moment = datetime(2026, 3, 2, 15, tzinfo=UTC)
    for _ in range(2):  # the same event twice: one effect
        await router.route(EventIn(id="p1", type="purchase", customer_id="c1", occurred_at=moment,
                                   properties={"amount": 120}))
    await router.route(EventIn(id="p2", type="purchase", customer_id="c1", occurred_at=moment,
                               properties={"amount": "30.5"}))
    from store.db import session_scope
    from store.tables import Customer

    with session_scope(db) as session:
        customer = session.get(Customer, "c1")
        assert customer is not None
    assert customer.orders_count == 2 and customer.total_spent == 150.5
    assert customer.points == 150 and customer.tier == "silver"
    assert customer.last_purchase_at == moment


LISTENS = """
id: listens
name: Listens for purchases
trigger: {event: signup}
exit_on: [{event: purchase}]
steps:
  - wait: 30d
"""
DEAF = """
id: deaf
name: Listens to nothing
trigger: {event: signup}
steps:
  - wait: 30d
"""


async def test_runs_are_signalled_only_with_events_they_listen_to(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"listens": LISTENS, "deaf": DEAF})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("listens")  # the signup starts both
        assert len(run.enrollments("deaf")) == 1
        routed = await run.sim.router.route(EventIn(id="p-1", type="purchase", customer_id="sim-customer",
                                                    occurred_at=run.sim.clock, properties={"amount": 5}))
        assert routed.signalled == ["listens"]
        assert (await run.timeline("listens"))["outcome"] == "exited:purchase"


async def test_an_event_stored_but_not_routed_is_routed_on_retry_or_by_the_sweeper(journeys_dir: Path,
                                                                                   simulation) -> None:
    from datetime import timedelta

    catalog = write_journeys(journeys_dir, {"short": SHORT.format(reentry="always")})
    async with simulation(catalog) as run:
        await run.customer(id="a")
        await run.customer(id="b")
        router = run.sim.router
        real_start = router.starter.start

        async def temporal_down(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("Temporal unreachable")

        router.starter.start = temporal_down  # type: ignore[method-assign]
        for customer in ("a", "b"):
            with pytest.raises(RuntimeError):
                await router.route(EventIn(id=f"signup-{customer}", type="signup", customer_id=customer,
                                           occurred_at=run.sim.clock))
        router.starter.start = real_start  # type: ignore[method-assign]
        # The client retries: not a duplicate, the journey starts now.
        retried = await router.route(EventIn(id="signup-a", type="signup", customer_id="a", occurred_at=run.sim.clock))
        assert not retried.duplicate and retried.started == ["short"]
        # Nobody retries b's event: the sweeper finds it.
        assert await router.sweep(older_than=timedelta(0)) == 1
        assert len(run.enrollments("short", customer="b")) == 1
        assert await router.sweep(older_than=timedelta(0)) == 0
        again = await router.route(EventIn(id="signup-a", type="signup", customer_id="a", occurred_at=run.sim.clock))
        assert again.duplicate  # routed once: now a true duplicate


async def test_a_run_terminated_by_an_operator_does_not_block_reentry(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"short": SHORT.format(reentry="always")})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("short")
        await run.sim.env.client.get_workflow_handle(workflow_id("short", "sim-customer")).terminate("ops")
        # The enrollment still says active; the next entry finds the run gone and heals it.
        again = await run.sim.router.route(EventIn(id="again", type="signup", customer_id="sim-customer",
                                                   occurred_at=run.sim.clock))
        assert again.started == ["short"]
        runs = sorted(run.enrollments("short"), key=lambda e: e.status)
    assert [(r.status, r.outcome) for r in runs] == [("active", None), ("ended", "terminated")]
