"""Run keys: one run at a time per customer and key (each cart its own reminder), the
caps still protecting the customer; events reach the run of their key; workflow ids
carry the key's hash, never the key; and the exit-then-admission order of a trigger
event that also ends a run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from core.event import EventIn
from store.db import session_scope
from store.tables import Enrollment, Message
from tests.runtime.support import SETTINGS, write_journeys
from workflows.io import run_key_hash

CARTS = """
id: carts
name: Carts
trigger: {event: cart_abandoned}
reentry: always
run_key: trigger.properties.cart_id
exit_on:
  - event: purchase
    where: "event.properties.cart_id == trigger.properties.cart_id or event.properties.cart_id is none"
sending: {on_capped: skip}
steps:
  - wait: 1h
  - id: reminder
    send_sms: {text: "Your cart is waiting: {{ trigger.properties.cart_id }}"}
"""
ROOMY = SETTINGS.replace("frequency_caps: [{max: 1, per: 24h}, {max: 4, per: 7d}]",
                         "frequency_caps: [{max: 4, per: 7d}]")


async def _route(run, type_: str, event_id: str, **properties):  # type: ignore[no-untyped-def]
    return await run.sim.router.route(EventIn(id=event_id, type=type_, customer_id="sim-customer",
                                              occurred_at=run.sim.clock, properties=properties))


def _runs(run) -> dict[str, Enrollment]:  # type: ignore[no-untyped-def]
    """The customer's runs of `carts`, by the cart they were entered for."""
    found = {}
    for row in run.enrollments("carts"):
        cart = next(cart for cart in ("A", "B", "C") if row.run_key == run_key_hash("carts", f"cart-{cart}"))
        found[cart] = row
    return found


async def _outcome(run, row: Enrollment) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    result = await run.sim.result("carts", "sim-customer", row.workflow_id)
    return result.outcome, [entry.details.get("status", "") for entry in result.timeline if entry.action == "sms"]


async def test_two_carts_get_two_reminders_each_its_own_run(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS}, settings=ROOMY)
    async with simulation(catalog) as run:
        await run.customer()
        first = await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")
        await run.advance(timedelta(minutes=5))
        second = await _route(run, "cart_abandoned", "ca-2", cart_id="cart-B")
        again = await _route(run, "cart_abandoned", "ca-3", cart_id="cart-A")  # the same cart, still waiting
        assert first.started == second.started == ["carts"]
        assert again.started == [] and again.refused == {"carts": "already in this journey"}
        runs = _runs(run)
        assert set(runs) == {"A", "B"}
        for cart, row in runs.items():
            # PII-free ids: the customer's opaque id and a hash, never the key itself.
            assert row.workflow_id == f"journey/carts/sim-customer/{row.run_key}"
            assert len(row.run_key or "") == 16 and f"cart-{cart}" not in row.workflow_id
            assert await _outcome(run, row) == ("completed", ["sent"])
        assert sorted(m.body for m in run.messages()) == ["Your cart is waiting: cart-A",
                                                          "Your cart is waiting: cart-B"]


async def test_the_caps_still_protect_the_customer_across_carts(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS})  # at most 1 text per 24 h
    async with simulation(catalog) as run:
        await run.customer()
        await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")
        await run.advance(timedelta(minutes=5))
        await _route(run, "cart_abandoned", "ca-2", cart_id="cart-B")
        runs = _runs(run)
        assert await _outcome(run, runs["A"]) == ("completed", ["sent"])
        outcome, statuses = await _outcome(run, runs["B"])
        assert outcome == "completed" and statuses != ["sent"]
        sent = [m for m in run.messages() if m.status == "sent"]
        assert [m.body for m in sent] == ["Your cart is waiting: cart-A"]


async def test_a_purchase_of_one_cart_ends_only_that_carts_run(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS}, settings=ROOMY)
    async with simulation(catalog) as run:
        await run.customer()
        await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")
        await _route(run, "cart_abandoned", "ca-2", cart_id="cart-B")
        await run.advance(timedelta(minutes=10))
        bought = await _route(run, "purchase", "p-1", cart_id="cart-A", amount=50)
        assert bought.signalled == ["carts"]  # one run: A's (B's never hears of it)
        runs = _runs(run)
        assert await _outcome(run, runs["A"]) == ("exited:purchase", [])
        assert await _outcome(run, runs["B"]) == ("completed", ["sent"])


async def test_a_purchase_naming_no_cart_reaches_every_run(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS}, settings=ROOMY)
    async with simulation(catalog) as run:
        await run.customer()
        await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")
        await _route(run, "cart_abandoned", "ca-2", cart_id="cart-B")
        await run.advance(timedelta(minutes=10))
        bought = await _route(run, "purchase", "p-1", amount=50)
        assert bought.signalled == ["carts", "carts"]
        for row in _runs(run).values():
            assert await _outcome(run, row) == ("exited:purchase", [])
        assert run.messages() == []


async def test_a_trigger_without_its_key_enters_no_one(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS})
    async with simulation(catalog) as run:
        await run.customer()
        for number, properties in enumerate(({}, {"cart_id": ""}, {"cart_id": "x" * 257})):
            result = await _route(run, "cart_abandoned", f"ca-{number}", **properties)
            assert result.started == []
            assert result.refused["carts"] == ("run key too long" if number == 2 else "no run key")
        assert run.enrollments("carts") == []


async def test_a_reentry_window_counts_every_cart_of_the_customer(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS.replace("reentry: always", "reentry: 1d")})
    async with simulation(catalog) as run:
        await run.customer()
        assert (await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")).started == ["carts"]
        refused = await _route(run, "cart_abandoned", "ca-2", cart_id="cart-B")
        assert refused.refused == {"carts": "reentry window not over"}
        await run.advance(timedelta(days=1, minutes=1))
        assert (await _route(run, "cart_abandoned", "ca-3", cart_id="cart-C")).started == ["carts"]
        assert set(_runs(run)) == {"A", "C"}


async def test_the_database_holds_one_active_run_per_key(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"carts": CARTS})
    async with simulation(catalog) as run:
        await run.customer()
        await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")
        [row] = run.enrollments("carts")
        twin = Enrollment(**{**row.model_dump(), "id": "twin", "occasion": "other"})
        try:
            with session_scope(run.sim.db) as session:
                session.add(twin)
            raise AssertionError("a second active run of one key was stored")
        except IntegrityError:
            pass


REPEAT_BUYERS = """
id: repeat
name: Repeat buyers
trigger: {event: purchase}
reentry: always
exit_on: [{event: purchase}]
steps:
  - wait: 30d
  - id: nudge
    send_sms: {text: "Time for a new pair?"}
"""


async def test_the_purchase_that_ends_a_run_starts_the_next(journeys_dir: Path, simulation) -> None:
    """Exit first, then admission: the second purchase ends run 1 (exit_on) and, as
    reentry is `always`, starts run 2."""
    catalog = write_journeys(journeys_dir, {"repeat": REPEAT_BUYERS})
    async with simulation(catalog) as run:
        await run.customer()
        first = await _route(run, "purchase", "p-1", amount=20)
        assert first.started == ["repeat"]
        await run.advance(timedelta(days=3))
        second = await _route(run, "purchase", "p-2", amount=30)
        assert second.signalled == ["repeat"] and second.started == ["repeat"]
        with session_scope(run.sim.db) as session:
            rows = session.exec(select(Enrollment).where(Enrollment.journey_id == "repeat")
                                .order_by(Enrollment.entered_at)).all()  # type: ignore[arg-type]
            assert [(r.trigger_event_id, r.status, r.outcome) for r in rows] == [
                ("p-1", "ended", "exited:purchase"), ("p-2", "active", None)]
            assert rows[0].workflow_id == rows[1].workflow_id == "journey/repeat/sim-customer"
        result = await run.sim.result("repeat", "sim-customer", "journey/repeat/sim-customer")
        assert result.outcome == "completed"  # the newest run: run 2, to its end
        with session_scope(run.sim.db) as session:
            assert [m.body for m in session.exec(select(Message)).all()] == ["Time for a new pair?"]


async def test_erasure_stops_every_cart_run_and_the_export_lists_each(journeys_dir: Path, simulation) -> None:
    from core.customers.erasure import erase_customer
    from core.customers.export import export_customer
    from core.journeys.stopping import TemporalRunStopper

    catalog = write_journeys(journeys_dir, {"carts": CARTS})
    async with simulation(catalog) as run:
        await run.customer()
        await _route(run, "cart_abandoned", "ca-1", cart_id="cart-A")
        await _route(run, "cart_abandoned", "ca-2", cart_id="cart-B")
        runs = _runs(run)
        exported = export_customer(run.sim.db, "sim-customer")["journeys"]
        assert sorted(entry["run_key"] for entry in exported) == sorted(row.run_key for row in runs.values())
        report = await erase_customer(run.sim.db, TemporalRunStopper(run.sim.env.client), "sim-customer",
                                      source="cli")
        assert report.counts["runs_stopped"] == 2 and report.runs_not_stopped == []
        for row in runs.values():
            description = await run.sim.env.client.get_workflow_handle(row.workflow_id).describe()
            assert description.status is not None and description.status.name == "TERMINATED"
