"""send_sms with `channel:` on the real Temporal test server and both databases: the first
channel, the other only when the first cannot reach the customer, never around a deferral;
`preferred` follows the most recent opt-in. The timeline says which channel and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from core.customers import email_consent, email_suppressions
from processes.simulate import Simulation
from store.db import session_scope
from store.tables import Customer, Email, Message
from tests.runtime.support import Run, write_journeys

START = datetime(2026, 3, 2, 15, tzinfo=UTC)  # a Monday, 10:00 in New York: no quiet hours
NIGHT = datetime(2026, 3, 3, 3, tzinfo=UTC)  # 22:00 in New York: inside the texts' quiet hours
JOURNEY = """
id: cart
name: Text or email
trigger: {{event: cart_abandoned}}
steps:
  - id: note
    send_sms: {{text: "Your cart is waiting"}}
    channel: {channel}
    email:
      subject: "{{{{ customer.first_name }}}}, your cart"
      text: "Your cart: {{{{ link('https://shop.example/cart') }}}}"
  - if: "sent('note')"
    then:
      - id: thanks
        send_email: {{subject: "Thanks", text: "noted", purpose: transactional}}
"""


async def _run(journeys_dir: Path, env, db, sender, channel: str, *, start: datetime = START,  # type: ignore[no-untyped-def]
               email_opt_in_after: timedelta | None = None, suppressed: str | None = None,
               **customer: Any) -> dict[str, Any]:
    catalog = write_journeys(journeys_dir, {"cart": JOURNEY.format(channel=channel)})
    async with Simulation(env, catalog, db, start=start, sender=sender) as sim:
        run = Run(sim)
        await run.customer(first_name="Ada", **customer)
        if suppressed is not None:  # the address is on the suppression list (a hard bounce, say)
            with session_scope(db) as session:
                assert email_suppressions.suppress(session, customer["email"], suppressed, source="test", at=start)
        if email_opt_in_after is not None:  # the customer opts in to email later than to texts
            with session_scope(db) as session:
                row = session.get(Customer, "sim-customer")
                assert row is not None
                assert email_consent.record(session, row, "opted_in", source="api", at=start + email_opt_in_after)
            await run.advance(email_opt_in_after + timedelta(minutes=1))
        assert await run.enter("cart", trigger="cart_abandoned")
        await run.advance(timedelta(days=1))
        return await run.timeline("cart")


def _sends(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("action", "status", "reason", "channel", "channel_rule", "preferred", "fallback_reason")
    return [{k: e[k] for k in keep if k in e} for e in timeline["timeline"]
            if e["step"] == "note" and e["action"] in ("sms", "email")]


def _rows(db) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        texts = [(m.step_id, m.status) for m in session.exec(select(Message)).all()]
        emails = [(e.step_id, e.status) for e in session.exec(select(Email).order_by(Email.created_at)).all()]
    return texts, emails


async def test_sms_else_email_texts_a_reachable_customer_and_sends_no_email(journeys_dir: Path, env, db,
                                                                            sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "sms_else_email", email="ada@example.com")
    assert _sends(timeline) == [{"action": "sms", "status": "sent", "channel": "sms",
                                 "channel_rule": "sms_else_email"}]
    assert _rows(db) == ([("note", "sent")], [("thanks", "sent")])  # sent('note') holds


async def test_sms_else_email_emails_a_customer_without_a_number(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "sms_else_email", email="ada@example.com", phone=None)
    assert _sends(timeline) == [
        {"action": "sms", "status": "skipped", "reason": "invalid_phone", "channel": "sms",
         "channel_rule": "sms_else_email"},
        {"action": "email", "status": "sent", "channel": "email", "channel_rule": "sms_else_email",
         "fallback_reason": "invalid_phone"},
    ]
    [email] = [e for e in timeline["timeline"] if e["step"] == "note" and e["action"] == "email"]
    assert email["subject"] == "Ada, your cart"
    assert _rows(db) == ([("note", "skipped")], [("note", "sent"), ("thanks", "sent")])
    assert sender.sent == []


async def test_sms_else_email_emails_a_customer_without_text_consent(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "sms_else_email", email="ada@example.com",
                          sms_consent="none")
    assert [(e["action"], e["status"], e.get("fallback_reason")) for e in _sends(timeline)] == [
        ("sms", "skipped", None), ("email", "sent", "no_consent")]


async def test_a_deferral_is_waited_out_on_the_first_channel_never_switched(journeys_dir: Path, env, db,
                                                                           sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "sms_else_email", start=NIGHT, email="ada@example.com")
    assert _sends(timeline) == [{"action": "sms", "status": "sent", "channel": "sms",
                                 "channel_rule": "sms_else_email"}]
    assert [m.body for m in sender.sent] == ["Your cart is waiting"]
    texts, emails = _rows(db)
    assert texts == [("note", "sent")] and ("note", "sent") not in emails
    [sms] = [e for e in timeline["timeline"] if e["step"] == "note" and e["action"] == "sms"]
    assert sms["at"] >= "2026-03-03T13:00"  # 08:00 in New York: after the quiet hours


async def test_email_else_sms_texts_a_customer_without_an_address(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "email_else_sms")
    assert _sends(timeline) == [
        {"action": "email", "status": "skipped", "reason": "no_email", "channel": "email",
         "channel_rule": "email_else_sms"},
        {"action": "sms", "status": "sent", "channel": "sms", "channel_rule": "email_else_sms",
         "fallback_reason": "no_email"},
    ]
    assert [m.body for m in sender.sent] == ["Your cart is waiting"]


async def test_email_else_sms_emails_a_reachable_customer(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "email_else_sms", email="ada@example.com")
    assert [(e["action"], e["status"]) for e in _sends(timeline)] == [("email", "sent")]
    assert sender.sent == []


async def test_email_else_sms_texts_one_who_opted_out_of_email(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "email_else_sms", email="ada@example.com",
                          email_consent="opted_out")
    assert [(e["action"], e["status"], e.get("fallback_reason")) for e in _sends(timeline)] == [
        ("email", "skipped", None), ("sms", "sent", "opted_out")]


async def test_email_else_sms_texts_one_whose_address_is_suppressed(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "email_else_sms", email="ada@example.com",
                          suppressed="hard_bounce")
    assert [(e["action"], e["status"], e.get("fallback_reason")) for e in _sends(timeline)] == [
        ("email", "skipped", None), ("sms", "sent", "suppressed_hard_bounce")]


async def test_a_skip_that_is_not_about_reach_does_not_switch(journeys_dir: Path, env, db, sender) -> None:
    # on_capped: skip and a text already sent today (cap 1 per 24h): frequency_cap, final.
    catalog = write_journeys(journeys_dir, {"cart": JOURNEY.format(channel="sms_else_email").replace(
        "steps:\n", "sending: {on_capped: skip}\nsteps:\n  - id: first\n    send_sms: {text: \"Hello\"}\n", 1)})
    async with Simulation(env, catalog, db, start=START, sender=sender) as sim:
        run = Run(sim)
        await run.customer(first_name="Ada", email="ada@example.com")
        assert await run.enter("cart", trigger="cart_abandoned")
        await run.advance(timedelta(days=1))
        timeline = await run.timeline("cart")
    assert _sends(timeline) == [{"action": "sms", "status": "skipped", "reason": "frequency_cap", "channel": "sms",
                                 "channel_rule": "sms_else_email"}]
    assert _rows(db)[1] == []  # no email at all: sent('note') is false, so no thanks either


async def test_no_channel_reaches_the_customer_both_are_skipped_and_the_run_goes_on(journeys_dir: Path, env, db,
                                                                                   sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "sms_else_email", phone=None)
    assert [(e["action"], e["status"], e.get("reason")) for e in _sends(timeline)] == [
        ("sms", "skipped", "invalid_phone"), ("email", "skipped", "no_email")]
    assert timeline["outcome"] == "completed"
    assert _rows(db) == ([("note", "skipped")], [("note", "skipped")])  # sent('note') false: no thanks


async def test_preferred_texts_when_both_opt_ins_came_together(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "preferred", email="ada@example.com")
    assert _sends(timeline) == [{"action": "sms", "status": "sent", "channel": "sms", "channel_rule": "preferred",
                                 "preferred": "sms"}]


async def test_preferred_emails_after_a_more_recent_email_opt_in(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "preferred", email="ada@example.com",
                          email_consent="none", email_opt_in_after=timedelta(hours=1))
    assert _sends(timeline) == [{"action": "email", "status": "sent", "channel": "email",
                                 "channel_rule": "preferred", "preferred": "email"}]
    assert sender.sent == []


async def test_preferred_emails_when_email_is_the_only_opt_in(journeys_dir: Path, env, db, sender) -> None:
    timeline = await _run(journeys_dir, env, db, sender, "preferred", email="ada@example.com", sms_consent="none")
    assert [(e["action"], e["status"], e.get("preferred")) for e in _sends(timeline)] == [("email", "sent", "email")]
