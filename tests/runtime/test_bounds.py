"""Hostile expressions and templates through the real workflow and activities: a
failure is recorded once and the run goes on (never an endless retry), an oversized
text or value is a failure with a reason (never a send or a write), the log holds no
customer data, and no text can carry a server secret."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlmodel import select

from processes.simulate import Simulation
from store.db import session_scope
from store.tables import AttributeChange, Decision, Event
from tests.runtime.support import MONDAY_3PM, SETTINGS, Run, sms, write_journeys

# 'Zoraida' is in the customer's first name only: it must never reach a log line.
NAME = "Zoraida"

CONDITIONS = """
id: conditions
name: Conditions
trigger: {event: signup}
steps:
  - if: "customer.points ** 1000000000 > 1"
    then: [{exit: exploded}]
  - if: "customer.first_name | date == 'x'"
    then: [{exit: dated}]
  - choose:
      - when: "'a' * 10**9 == 'a'"
        steps: [{exit: multiplied}]
      - else: [{exit: went_on}]
"""


async def _timeline(run: Run, journey: str) -> dict:
    # An endless retry would never finish: bound the wait instead of hanging the suite.
    return await asyncio.wait_for(run.timeline(journey), timeout=60)


async def test_failing_conditions_count_as_false_once_and_log_no_customer_data(
        journeys_dir: Path, simulation, caplog: pytest.LogCaptureFixture) -> None:
    catalog = write_journeys(journeys_dir, {"conditions": CONDITIONS})
    caplog.set_level(logging.DEBUG)
    async with simulation(catalog) as run:
        await run.customer(first_name=NAME)
        assert await run.enter("conditions")
        timeline = await _timeline(run, "conditions")
    assert timeline["outcome"] == "went_on"
    assert [(e["action"], e.get("result", e.get("branch"))) for e in timeline["timeline"]] == [
        ("if", False), ("if", False), ("choose", 1), ("exit", None)]
    with session_scope(run.sim.db) as session:
        errors = sorted(d.value.get("error") for d in session.exec(select(Decision)) if d.value.get("error"))
    assert errors == ["ValueError", "limit", "limit"]  # recorded with the decision, so replays agree
    failures = [r for r in caplog.records if "counts as false" in r.getMessage()]
    assert len(failures) == 3  # once each: not retried
    assert "step steps.1: the condition failed (ValueError)" in failures[1].getMessage()
    assert not [r.getMessage() for r in caplog.records if NAME in r.getMessage()]
    assert not [r for r in caplog.records if "Completing activity as failed" in r.getMessage()]


TEXTS = """
id: texts
name: Texts
trigger: {event: signup}
steps:
  - id: huge
    send_sms: {text: "{{ 'x' * 9000 }}"}
  - id: endless
    send_sms: {text: "{% for c in 'x' * 300 %}{{ 'y' * 9000 }}{% endfor %}"}
  - id: billion
    send_sms: {text: "{{ 'a' * 10**9 }}"}
  - id: fine
    send_sms: {text: "Hi {{ customer.first_name }}"}
"""


async def test_an_oversized_text_is_skipped_too_long_not_sent(journeys_dir: Path, simulation, sender) -> None:
    catalog = write_journeys(journeys_dir, {"texts": TEXTS})
    async with simulation(catalog) as run:
        await run.customer(first_name=NAME)
        assert await run.enter("texts")
        timeline = await _timeline(run, "texts")
        messages = {m.step_id: m for m in run.messages()}
    assert [(e["step"], e["status"], e.get("reason")) for e in sms(timeline)] == [
        ("huge", "skipped", "too_long"),
        ("endless", "skipped", "too_long"),
        ("billion", "skipped", "render_error"),
        ("fine", "sent", None),
    ]
    assert [m.body for m in sender.sent] == [f"Hi {NAME}"]
    assert messages["huge"].body is None and messages["huge"].segments == 59  # counted, not kept
    assert timeline["outcome"] == "completed"


async def test_max_segments_comes_from_settings(journeys_dir: Path, simulation, sender) -> None:
    journey = """
    id: short
    name: Short
    trigger: {event: signup}
    steps:
      - id: two
        send_sms: {text: "%s"}
    """ % ("x" * 200)
    catalog = write_journeys(journeys_dir, {"short": journey}, settings=SETTINGS + "max_segments: 1\n")
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("short")
        timeline = await _timeline(run, "short")
    assert [(e["status"], e.get("reason"), e["segments"]) for e in sms(timeline)] == [("skipped", "too_long", 2)]
    assert sender.sent == []


EFFECTS = """
id: effects
name: Effects
trigger: {event: signup}
steps:
  - id: big
    set: {notes: "{% for c in 'abc' %}{{ 'x' * 9000 }}{% endfor %}", other: "kept?"}
  - id: broken
    set: {born: "{{ customer.first_name | date }}"}
  - id: loud
    emit: {event: shouted, properties: {text: "{% for c in 'abc' %}{{ 'x' * 9000 }}{% endfor %}"}}
  - id: ok
    set: {fine: "yes"}
"""


async def test_oversized_or_failing_values_are_recorded_failures_not_writes(
        journeys_dir: Path, simulation, caplog: pytest.LogCaptureFixture) -> None:
    catalog = write_journeys(journeys_dir, {"effects": EFFECTS})
    caplog.set_level(logging.DEBUG)
    async with simulation(catalog) as run:
        await run.customer(first_name=NAME)
        assert await run.enter("effects")
        timeline = await _timeline(run, "effects")
        customer = run.customer_row()
    entries = [(e["step"], e["action"], e.get("failed")) for e in timeline["timeline"]]
    assert entries == [("big", "set", "too_long"), ("broken", "set", "render_error"),
                       ("loud", "emit", "too_long"), ("ok", "set", None)]
    assert customer.attributes == {"fine": "yes"}  # all or nothing per step
    with session_scope(run.sim.db) as session:
        assert len(session.exec(select(AttributeChange)).all()) == 1
        assert session.exec(select(Event).where(Event.type == "shouted")).all() == []
    assert timeline["outcome"] == "completed"
    assert not [r.getMessage() for r in caplog.records if NAME in r.getMessage()]


GOAL = """
id: nudge
name: Nudge
trigger: {event: signup}
goal: {event: purchase, within: 7d, value: "(10 ** 100) ** 4"}
steps:
  - id: nudge
    send_sms: {text: "Come back!"}
"""


async def test_a_goal_value_too_big_for_a_number_is_no_value(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"nudge": GOAL})
    async with simulation(catalog) as run:
        await run.customer()
        assert await run.enter("nudge")
        await _timeline(run, "nudge")
        await run.at('purchase@+2d {"amount": 59.5}')
        [enrollment] = run.enrollments("nudge")
    assert enrollment.converted_at is not None and enrollment.conversion_value is None


SECRET = "server-secret-token-0123456789"
LEAKY = """
id: leaky
name: Leaky
trigger: {event: signup}
steps:
  - id: note
    send_sms: {text: "Your note: {{ customer.attributes.note }}"}
"""


async def test_a_text_holding_a_server_secret_is_never_sent(journeys_dir: Path, env, db, sender) -> None:
    catalog = write_journeys(journeys_dir, {"leaky": LEAKY})
    async with Simulation(env, catalog, db, start=MONDAY_3PM, sender=sender, secrets=(SECRET,)) as sim:
        run = Run(sim)
        await run.customer(attributes={"note": f"token={SECRET}"})
        assert await run.enter("leaky")
        timeline = await _timeline(run, "leaky")
        [message] = run.messages()
    assert [(e["status"], e.get("reason")) for e in sms(timeline)] == [("skipped", "secret_in_text")]
    assert sender.sent == [] and message.body is None


def test_the_server_secrets_are_the_tokens_and_the_database_password() -> None:
    from processes.settings import ServiceSettings

    settings = ServiceSettings.from_mapping({
        "JOURNEYS_API_TOKEN": "api-token-0123456789", "TWILIO_AUTH_TOKEN": "short",
        "JOURNEYS_DATABASE_URL": "postgresql://journeys:db-password-42@db.internal:5432/journeys"})
    assert settings.server_secrets() == ("api-token-0123456789", "db-password-42")  # under 8 chars: left out
    assert ServiceSettings.from_mapping({}).server_secrets() == ()
