"""The sending rules, end to end: consent, quiet hours, caps across journeys, STOP,
exits during long waits, and exactly-once sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.runtime.support import (
    DIRECT_MOMENT,
    around,
    at,
    consented_sender_activities,
    direct_call,
    sms,
    write_journeys,
)

ONE_TEXT = """
id: {id}
name: One text
trigger: {{event: {event}}}
sending: {{purpose: {purpose}, on_capped: {on_capped}}}
steps:
  - id: text
    send_sms: {{text: "{id} says hi"}}
"""


def one_text(journey_id: str, event: str = "signup", purpose: str = "marketing", on_capped: str = "defer") -> str:
    return ONE_TEXT.format(id=journey_id, event=event, purpose=purpose, on_capped=on_capped)


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        # 02:00 UTC is 21:00 in New York (quiet) and 03:00 in Stockholm (quiet).
        ("America/New_York", around("2026-03-02T13:00:00Z")),  # 08:00 EST
        ("Europe/Stockholm", around("2026-03-02T07:00:00Z")),  # 08:00 CET
        ("Asia/Tokyo", around("2026-03-02T02:00:00Z")),  # 11:00 in Tokyo: not quiet, sent at once
    ],
)
async def test_quiet_hours_defer_to_the_end_of_the_window_in_local_time(
        journeys_dir: Path, simulation, timezone: str, expected: str) -> None:
    catalog = write_journeys(journeys_dir, {"promo": one_text("promo")})
    async with simulation(catalog, start=datetime(2026, 3, 2, 2, 0, tzinfo=UTC)) as run:
        await run.customer(timezone=timezone)
        assert await run.enter("promo")
        timeline = await run.timeline("promo")
    [text] = sms(timeline)
    assert text["status"] == "sent" and text["at"] == expected


async def test_transactional_texts_ignore_quiet_hours_and_consent_but_not_opt_out(
        journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"receipt": one_text("receipt", purpose="transactional")})
    async with simulation(catalog, start=datetime(2026, 3, 2, 2, 0, tzinfo=UTC)) as run:
        await run.customer(id="a", sms_consent="none")
        await run.customer(id="b", sms_consent="opted_out")
        assert await run.enter("receipt", customer="a")
        assert await run.enter("receipt", customer="b")
        sent = sms(await run.timeline("receipt", customer="a"))[0]
        refused = sms(await run.timeline("receipt", customer="b"))[0]
    assert sent["status"] == "sent" and sent["at"] == around("2026-03-02T02:00:00Z")
    assert refused["status"] == "skipped" and refused["reason"] == "opted_out"


async def test_frequency_cap_defers_across_journeys(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"first": one_text("first"), "second": one_text("second", "purchase")})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("first")
        await run.at('purchase@+2h {"amount": 10}')
        first = sms(await run.timeline("first"))[0]
        second = sms(await run.timeline("second"))[0]
    assert first["at"] == at("0s")
    # 1 per 24h: the second journey's text waits for the first to age out, then goes.
    assert second["status"] == "sent" and second["at"] == at("24h")


async def test_frequency_cap_skip_records_the_skip(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {
        "first": one_text("first"), "second": one_text("second", "purchase", on_capped="skip")})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("first")
        await run.at('purchase@+2h {"amount": 10}')
        second = await run.timeline("second")
    [text] = sms(second)
    assert text["status"] == "skipped" and text["reason"] == "frequency_cap" and text["at"] == at("2h")
    assert second["outcome"] == "completed"  # a skip is recorded, and the journey goes on
    assert [m.status for m in run.messages()] == ["sent", "skipped"]


async def test_weekly_cap_defers_the_fifth_text_of_the_week(journeys_dir: Path, simulation) -> None:
    daily = """
    id: daily
    name: Daily
    trigger: {event: signup}
    steps:
    """ + "".join(f"""
      - id: day{i}
        send_sms: {{text: "Day {i}"}}
      - wait: 1d
    """ for i in range(5))
    catalog = write_journeys(journeys_dir, {"daily": daily})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("daily")
        timeline = await run.timeline("daily")
    times = [entry["at"] for entry in sms(timeline)]
    assert times[:4] == [at(f"{d}d") for d in range(4)]
    # 4 per 7 days: the fifth waits until the first is 7 days old.
    assert times[4] == at("7d")


WAIT_THEN_TEXT = """
id: winback
name: Win back
trigger: {event: signup}
exit_on:
  - event: purchase
steps:
  - id: first
    send_sms: {text: "We miss you"}
  - wait: 30d
  - id: second
    send_sms: {text: "Still missing you"}
"""


async def test_stop_during_a_wait_stops_later_marketing(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"winback": WAIT_THEN_TEXT})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("winback")
        await run.at("stop@+5d")
        timeline = await run.timeline("winback")
        customer = run.customer_row()
    assert customer.sms_consent == "opted_out"
    first, second = sms(timeline)
    assert first["status"] == "sent"
    assert second["status"] == "skipped" and second["reason"] == "opted_out" and second["at"] == at("30d")
    # One journey text, and the STOP answered exactly once.
    assert [m.body for m in sender.sent] == ["We miss you", catalog.settings.replies.stop]


async def test_exit_on_ends_a_30_day_wait_at_once(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"winback": WAIT_THEN_TEXT})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("winback")
        await run.at('purchase@+3d {"amount": 40}')
        timeline = await run.timeline("winback")
        [enrollment] = run.enrollments("winback")
    assert timeline["outcome"] == "exited:purchase"
    assert timeline["ended_at"] == at("3d")
    assert [entry["step"] for entry in sms(timeline)] == ["first"]
    assert enrollment.status == "ended" and enrollment.outcome == "exited:purchase"


@pytest.mark.parametrize("consent", ["none", "pending"])
async def test_marketing_needs_opt_in(journeys_dir: Path, simulation, consent: str) -> None:
    catalog = write_journeys(journeys_dir, {"promo": one_text("promo")})
    async with simulation(catalog) as run:
        await run.customer(sms_consent=consent)
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
    assert text["status"] == "skipped" and text["reason"] == "no_consent"


async def test_a_customer_without_a_usable_number_is_skipped(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"promo": one_text("promo")})
    async with simulation(catalog) as run:
        await run.customer(phone=None)
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
    assert text["status"] == "skipped" and text["reason"] == "invalid_phone"


class AcceptedThenLost:
    """The provider accepts the message, then the worker loses the answer (a crash,
    a timeout): the activity fails after the provider took it, and Temporal retries."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0
        self.accepted: list = []  # what the provider's own records hold

    def send(self, sms):  # type: ignore[no-untyped-def]
        from messaging.senders.base import ProviderReceipt

        self.calls += 1
        self.accepted.append(sms)
        if self.calls == 1:
            raise RuntimeError("connection lost after the provider accepted the message")
        return ProviderReceipt(provider_message_id=f"SM{self.calls}", status="queued")

    def lookup(self, to, since):  # type: ignore[no-untyped-def]
        from messaging.senders.base import ProviderMessage

        return [ProviderMessage(provider_message_id=f"SM{n + 1}", body=sms.body, status="queued", created_at=None)
                for n, sms in reversed(list(enumerate(self.accepted))) if sms.to == to]


async def test_a_retried_send_never_sends_twice(journeys_dir: Path, env, db) -> None:
    from processes.simulate import CustomerSpec, Simulation

    catalog = write_journeys(journeys_dir, {"promo": one_text("promo")})
    sender = AcceptedThenLost()
    async with Simulation(env, catalog, db, start=datetime(2026, 3, 2, 15, tzinfo=UTC), sender=sender) as sim:
        await sim.add_customer(CustomerSpec())
        assert await sim.enter(catalog.journey("promo"), "sim-customer")
        result = await sim.result("promo", "sim-customer")
    assert sender.calls == 1  # the retry saw the message in flight and did not send again
    [entry] = [e for e in result.timeline if e.action == "sms"]
    assert entry.details["status"] == "sent"
    from sqlmodel import select

    from store.db import session_scope
    from store.tables import Message

    with session_scope(db) as session:
        [message] = session.exec(select(Message)).all()
    # The provider's own records settled the unknown outcome: sent, with its id.
    assert message.status == "sent" and message.provider_message_id == "SM1"


async def test_send_activity_called_again_returns_the_first_outcome(journeys_dir: Path, db, sender) -> None:
    """A worker that sent, recorded, then died before reporting: the retry is a no-op."""
    from language.models import Message as MessageSpec

    catalog = write_journeys(journeys_dir, {"promo": one_text("promo")})
    moment = DIRECT_MOMENT
    activities = consented_sender_activities(db, catalog, sender)
    call = direct_call(MessageSpec(text="Hello"))
    first = await activities.send_sms(call)
    again = await activities.send_sms(call.model_copy(update={"at": moment + timedelta(minutes=5)}))
    assert first.status == again.status == "sent" and first.message_id == again.message_id
    assert len(sender.sent) == 1


SUNSET_SETTINGS = """
brand: Nordic Shoes
default_timezone: America/New_York
sunset: {after: 180d}
"""


def _long_ago(run, customer_id: str, days: int) -> None:  # type: ignore[no-untyped-def]
    """Make the customer (and their opt-in) ``days`` old: only engagement can keep them."""
    from sqlmodel import select

    from store.db import session_scope
    from store.tables import ConsentRecord, Customer
    from tests.runtime.support import MONDAY_3PM

    with session_scope(run.sim.db) as session:
        customer = session.get(Customer, customer_id)
        customer.created_at = MONDAY_3PM - timedelta(days=days)
        session.add(customer)
        for record in session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)):
            record.occurred_at = MONDAY_3PM - timedelta(days=days)
            session.add(record)


@pytest.mark.parametrize(("engagement", "expected"), [
    ({}, ("skipped", "sunset")),
    ({"orders": [{"at": "-200d", "amount": 10}]}, ("skipped", "sunset")),  # engaged, but too long ago
    ({"orders": [{"at": "-20d", "amount": 10}]}, ("sent", None)),  # a recent purchase
    ({"reply": "-10d"}, ("sent", None)),  # a recent reply
    ({"opt_in": 30}, ("sent", None)),  # subscribed 30 days ago: the full 180 days to engage
])
async def test_sunset_skips_marketing_to_subscribers_who_stopped_engaging(
        journeys_dir: Path, simulation, engagement: dict, expected: tuple) -> None:
    from core.event import EventIn
    from processes.simulate import parse_offset
    from tests.runtime.support import MONDAY_3PM

    catalog = write_journeys(journeys_dir, {"promo": one_text("promo")}, settings=SUNSET_SETTINGS)
    async with simulation(catalog) as run:
        await run.customer(orders=engagement.get("orders", []))
        _long_ago(run, "sim-customer", engagement.get("opt_in", 400))
        if "reply" in engagement:
            await run.sim.router.route(EventIn(id="inbound:SM1", type="sms_replied", customer_id="sim-customer",
                                               occurred_at=MONDAY_3PM + parse_offset(engagement["reply"]),
                                               properties={"body": "thanks"}), source="sms")
        assert await run.enter("promo")
        [promo] = sms(await run.timeline("promo"))
    assert (promo["status"], promo.get("reason")) == expected
