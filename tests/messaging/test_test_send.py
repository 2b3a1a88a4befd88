"""`journeys test-send`: a journey's texts, rendered with a sample customer, sent for real
(the console sender, and Twilio's real SDK against Prism), recorded as tests that no report
or frequency cap counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app
from core.clock import utcnow
from core.reports.journey import journey_report
from core.sms import rules
from language.config import FrequencyCap
from language.validate import load_catalog
from store.db import open_database, session_scope
from store.tables import Message

SHIPPED = Path(__file__).parents[2] / "journeys"
ACCOUNT = "AC" + "0123456789abcdef" * 2
runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/journeys.db"
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", url)
    monkeypatch.setenv("JOURNEYS_DIR", str(SHIPPED))
    return url


def messages(url: str) -> list[Message]:
    db = open_database(url)
    try:
        with session_scope(db) as session:
            rows = list(session.exec(select(Message).order_by(Message.step_id, Message.reply_to)))
            session.expunge_all()
            return rows
    finally:
        db.dispose()


def test_console_every_text_to_every_number_marked_as_a_test(database: str) -> None:
    result = runner.invoke(app, ["test-send", "welcome", "--to", "+12015550123", "--to", "(201) 555-0188",
                                 "--customer", '{"id": "seed"}', "--yes"])
    assert result.exit_code == 0, result.output
    # The exact customer: no first name, so the default wording; links go to their target.
    assert ("first_order_feedback (1 segments) sent to ***123, ***188: Nordic Shoes: thanks for your first "
            "order, friend! How did it go?") in result.output
    assert "points_intro (2 segments) sent to ***123, ***188: Nordic Shoes Rewards: you earn 1 point per $1." \
        in result.output and ": https://nordicshoes.example/rewards" in result.output
    assert "Here's 10% off your next order: TEST-WELCOME10" in result.output
    rows = messages(database)
    steps = {row.step_id for row in rows}
    assert steps == {"welcome", "points_intro", "first_order_feedback", "first_order_sorry", "first_order_review"}
    assert len(rows) == 2 * len(steps)
    assert {row.reply_to for row in rows} == {"+12015550123", "+12015550188"}
    assert all(row.purpose == "test" and not row.counts_toward_caps and row.enrollment_id is None
               and row.status == "sent" and row.provider == "console" for row in rows)

    # Never counted: the journey report has no texts, and no cap holds anyone back.
    db = open_database(database)
    try:
        catalog = load_catalog(SHIPPED)
        pinned = catalog.journey("welcome")
        report = journey_report(db, "welcome", settings=catalog.settings, current=pinned.journey,
                                current_version=pinned.version)
        assert [v.messages_sent for v in report.versions] == [0]
        with session_scope(db) as session:
            for customer_id in ("", "seed"):
                verdict = rules.frequency_caps(session, customer_id, utcnow() + timedelta(seconds=1),
                                               [FrequencyCap(max=1, per="24h")], "defer")
                assert verdict.go
    finally:
        db.dispose()


def test_one_step_with_a_sample_customer_and_trigger(database: str) -> None:
    result = runner.invoke(app, ["test-send", "points_expiry", "--to", "+12015550123", "--step", "reminder",
                                 "--trigger", '{"expires_at": "2026-03-16"}', "--yes"])
    assert result.exit_code == 0, result.output
    assert ("reminder (1 segments) sent to ***123: Nordic Shoes: Hi Alex, some of your 0 points expire on "
            "Mar 16, 2026.") in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "not a number"], "--to 'not a number'"),
    ([arg for i in range(11) for arg in ("--to", f"+1201555{i:04d}")], "at most 10 numbers (got 11)"),
    (["--to", "+12015550123", "--step", "nope"], "no send_sms or ask step of welcome has that id (its steps: "
                                                  "welcome, points_intro, first_order_feedback"),
])
def test_bad_input_is_named_and_nothing_is_sent(database: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["test-send", "welcome", *args, "--yes"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())  # unwrapped from Typer's error box
    if Path(database.removeprefix("sqlite:///")).exists():
        assert messages(database) == []


def test_it_asks_before_sending(database: str) -> None:
    result = runner.invoke(app, ["test-send", "tier_upgrade", "--to", "+12015550123"], input="n\n")
    assert result.exit_code == 1
    assert "Send tier_upgrade's texts for real to 1 number(s) through console?" in result.output
    assert "sent to" not in result.output


def test_through_twilio_with_the_real_sdk(database: str, prism_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYS_SMS_SENDER", "twilio")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("TWILIO_API_BASE_URL", prism_url)
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG" + "0123456789abcdef" * 2)
    result = runner.invoke(app, ["test-send", "tier_upgrade", "--to", "+12015550123", "--step", "gold_perks",
                                 "--yes"])
    assert result.exit_code == 0, result.output
    [row] = messages(database)
    assert row.provider == "twilio" and row.status == "sent" and row.purpose == "test"
    assert row.provider_message_id and row.provider_message_id.startswith("SM")
