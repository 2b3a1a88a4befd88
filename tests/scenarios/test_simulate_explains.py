"""`journeys simulate` says what it did and why: the customer it simulated (exactly the one
given), local times beside UTC, every deferral's reason, and why a customer was not entered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.runtime
from cli.main import app

SHIPPED = Path(__file__).parents[2] / "journeys"
runner = CliRunner()


def simulate(*args: str) -> dict:
    result = runner.invoke(app, ["simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_customer_without_a_first_name_gets_the_default_text() -> None:
    report = simulate(str(SHIPPED / "tier_upgrade.yaml"), "--start", "2026-01-12T15:00:00Z",
                      "--customer", '{"id": "c1"}', "--trigger", 'tier_changed {"from": "silver", "to": "gold"}')
    [text] = [e for e in report["timeline"] if e["action"] == "sms"]
    assert text["text"].startswith("Nordic Shoes: congrats friend, you're now Gold!")
    assert report["sample_customer"] is False


def test_without_a_customer_the_sample_is_used_and_named() -> None:
    result = runner.invoke(app, ["simulate", str(SHIPPED / "tier_upgrade.yaml"), "--start", "2026-01-12T15:00:00Z",
                                 "--trigger", 'tier_changed {"from": "silver", "to": "gold"}'], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("no --customer given: simulating the sample customer (id sim-customer, "
                                    "first_name Alex")
    assert "congrats Alex" in result.output


def test_local_times_beside_utc_and_the_reason_of_a_deferral() -> None:
    # 03:00 UTC is 22:00 in New York: quiet hours hold the welcome text until 08:00.
    report = simulate(str(SHIPPED / "welcome.yaml"), "--start", "2026-01-13T03:00:00Z",
                      "--customer", '{"id": "c1", "timezone": "America/New_York"}')
    deferred, sent = report["timeline"][0], report["timeline"][1]
    # The test server's clock runs on while the run starts: a loaded machine adds a second or two.
    assert deferred.pop("at").startswith("2026-01-13T03:00:")
    assert deferred == {"local": "2026-01-12 22:00 EST", "step": "welcome",
                        "action": "deferred", "reason": "quiet_hours", "until": "2026-01-13T13:00:00Z"}
    assert (sent["step"], sent["action"], sent["local"]) == ("welcome", "sms", "2026-01-13 08:00 EST")
    assert report["zone"] == "America/New_York"


def test_the_text_output_has_local_times_and_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.runtime.console, "width", 250)  # one line per row
    result = runner.invoke(app, ["simulate", str(SHIPPED / "welcome.yaml"), "--start", "2026-01-13T03:00:00Z",
                                 "--customer", '{"id": "c1", "timezone": "Europe/Stockholm"}'], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "local (Europe/Stockholm)" in result.output
    assert "2026-01-13 04:00 CET" in result.output  # 03:00 UTC
    assert "reason=quiet_hours" in result.output


def test_why_a_customer_was_not_entered() -> None:
    report = simulate(str(SHIPPED / "winback.yaml"), "--start", "2026-01-12T15:00:00Z", "--customer", '{"id": "c1"}')
    assert report["outcome"] == "not_entered"
    assert report["not_entered_reason"] == "not in audience"
    report = simulate(str(SHIPPED / "tier_upgrade.yaml"), "--start", "2026-01-12T15:00:00Z",
                      "--trigger", 'tier_changed {"from": "platinum", "to": "gold"}')
    assert report["not_entered_reason"] == "trigger where is false"


@pytest.mark.parametrize(("consent", "status"), [(None, "sent"), ("none", "skipped")])
def test_simulate_takes_an_email_opted_in_unless_told_and_prints_one_json_object(consent: str | None,
                                                                                  status: str) -> None:
    """--customer with an email: email consent opted_in by default, as SMS consent is; the
    timeline shows the email (action email, subject, its text), and --json stays JSON."""
    customer = {"id": "c1", "first_name": "Jo", "email": "jo@example.com"}
    if consent:
        customer["email_consent"] = consent
    report = simulate(str(SHIPPED / "abandoned_cart.yaml"), "--start", "2026-01-12T15:00:00Z",
                      "--customer", json.dumps(customer),
                      "--trigger", 'cart_abandoned {"cart_id": "c42", "line_items": [{"title": "Clog", "quantity": 1}]}')
    [email] = [e for e in report["timeline"] if e["action"] == "email"]
    assert (email["step"], email["status"]) == ("cart_email", status)
    if status == "sent":
        assert email["subject"] == "Jo, your cart at Nordic Shoes is waiting" and "- 1 x Clog" in email["text"]
    else:
        assert email["reason"] == "no_consent"
