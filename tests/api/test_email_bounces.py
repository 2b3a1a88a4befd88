"""Bounces and complaints through the real API, from the providers' documented sample
payloads (tests/fixtures/email): Mailgun's signed event webhooks and Postmark's
basic-auth webhooks. A hard bounce suppresses the address (by its keyed hash) and marks
the email and the customer's email consent; soft bounces suppress at the limit, once per
report; a complaint opts out; the send activity then skips the address, whoever has it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from core.customers import email_consent
from language.models import EmailMessage
from messaging.senders.email import ConsoleEmailSender
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Email, EmailSuppression
from tests.api.conftest import API_SETTINGS, Api, serve_api
from tests.email.support import MOMENT, add_customer, call
from tests.email.support import activities as email_activities
from tests.runtime.support import write_journeys

FIXTURES = Path(__file__).parents[1] / "fixtures" / "email"
MAILGUN_KEY = "key-mailgun-webhook-signing"
POSTMARK_PASSWORD = "postmark-webhook-password"
MAILGUN = "/integrations/email/mailgun"
POSTMARK = "/integrations/email/postmark"
ADDRESS = "ada@example.com"
MESSAGE = EmailMessage(subject="Hi {{ customer.first_name }}", text="Your cart is waiting")


@pytest.fixture
async def api(tmp_path: Path, env, db) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {}, settings=API_SETTINGS + "email: {soft_bounce_limit: 3}\n")
    async with serve_api(env, db, catalog, mailgun_webhook_signing_key=MAILGUN_KEY,
                         postmark_webhook_password=POSTMARK_PASSWORD) as api:
        yield api


def _db(api: Api) -> Any:
    return api.run.sim.db


async def _sent(api: Api, step_key: str = "cart_email") -> Email:
    """An email sent to c1 through the real send activity (console sender): its row."""
    outcome = await email_activities(_db(api), api.run.sim.catalog, ConsoleEmailSender()).send_email(
        call(MESSAGE, step_key=step_key))
    with session_scope(_db(api), readonly=True) as session:
        row = session.get(Email, outcome.message_id)
        assert row is not None
        return row


def _mailgun(name: str, *, key: str = MAILGUN_KEY, recipient: str = ADDRESS, message_id: str | None = None,
             event_id: str | None = None) -> dict[str, Any]:
    payload = json.loads((FIXTURES / name).read_text())
    data = payload["event-data"]
    data["recipient"] = recipient
    if message_id is not None:
        data["message"]["headers"]["message-id"] = message_id
    signature = payload["signature"]
    if event_id is not None:  # a new report: its own id and signature token
        data["id"] = event_id
        signature["token"] = hashlib.sha256(event_id.encode()).hexdigest()[:50]
    signature["signature"] = hmac.new(key.encode(), (signature["timestamp"] + signature["token"]).encode(),
                                      hashlib.sha256).hexdigest()
    return payload


def _postmark(name: str, **changes: Any) -> dict[str, Any]:
    return {**json.loads((FIXTURES / name).read_text()), "Email": ADDRESS, **changes}


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"postmark:{password}".encode()).decode()}


def _customer(api: Api, customer_id: str = "c1") -> Customer:
    with session_scope(_db(api), readonly=True) as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def _email_records(api: Api) -> list[ConsentRecord]:
    with session_scope(_db(api), readonly=True) as session:
        return list(session.exec(select(ConsentRecord).where(ConsentRecord.channel == "email")
                                 .order_by(col(ConsentRecord.id))).all())


def _suppressions(api: Api) -> list[EmailSuppression]:
    with session_scope(_db(api), readonly=True) as session:
        return list(session.exec(select(EmailSuppression)).all())


def _row(api: Api, row_id: str) -> Email:
    with session_scope(_db(api), readonly=True) as session:
        found = session.get(Email, row_id)
        assert found is not None
        return found


async def test_a_mailgun_hard_bounce_suppresses_the_address_and_marks_the_email(api: Api) -> None:
    add_customer(_db(api), email=ADDRESS)
    sent = await _sent(api)
    assert sent.status == "sent" and sent.provider_message_id
    bare = sent.provider_message_id.strip("<>")  # Mailgun reports the Message-ID without brackets
    answer = await api.http.post(MAILGUN, json=_mailgun("mailgun_permanent_failure.json", recipient="Ada@Example.COM",
                                                        message_id=bare))
    assert answer.status_code == 200 and answer.json() == {"ok": True, "ignored": None, "suppressed": True}
    assert _row(api, sent.id).status == "bounced" and _row(api, sent.id).reason == "hard_bounce"
    assert _customer(api).email_consent == "bounced"
    [*_, record] = _email_records(api)
    assert (record.status, record.source) == ("bounced", "email_hard_bounce")
    assert "mailgun" in (record.disclosure or "") and sent.id in (record.disclosure or "")
    [suppression] = _suppressions(api)
    assert suppression.reason == "hard_bounce" and suppression.source == "mailgun_webhook"
    assert suppression.address.startswith("hmac:") and "ada@example" not in suppression.address  # never the address
    # A retry of the send activity keeps its answer; the next email is skipped.
    again = await email_activities(_db(api), api.run.sim.catalog, ConsoleEmailSender()).send_email(call(MESSAGE))
    assert again.status == "sent" and again.message_id == sent.id
    assert (await _sent(api, "second")).reason == "bounced"
    # A new profile with the same address, opted in: the suppression still holds.
    with session_scope(_db(api)) as session:
        other = Customer(id="c2", email="ada@example.com ", created_at=MOMENT, updated_at=MOMENT)
        session.add(other)
        session.flush()
        email_consent.record(session, other, "opted_in", source="test", at=MOMENT)
    base = call(MESSAGE, step_key="third")
    skipped = await email_activities(_db(api), api.run.sim.catalog, ConsoleEmailSender()).send_email(
        base.model_copy(update={"run": base.run.model_copy(update={"customer_id": "c2", "enrollment_id": "e2"})}))
    assert (skipped.status, skipped.reason) == ("skipped", "suppressed_hard_bounce")


async def test_a_forged_or_unsigned_mailgun_report_changes_nothing(api: Api) -> None:
    add_customer(_db(api), email=ADDRESS)
    forged = await api.http.post(MAILGUN, json=_mailgun("mailgun_permanent_failure.json", key="another-key"))
    assert forged.status_code == 401 and "signature" in forged.json()["detail"]
    unsigned = _mailgun("mailgun_permanent_failure.json")
    del unsigned["signature"]
    assert (await api.http.post(MAILGUN, json=unsigned)).status_code == 401
    assert (await api.http.post(MAILGUN, content=b"[1]", headers={"Content-Type": "application/json"})).status_code \
        == 400
    assert _suppressions(api) == [] and _customer(api).email_consent == "opted_in"
    # A report that lacks its recipient: 422 naming the field.
    missing = _mailgun("mailgun_permanent_failure.json")
    del missing["event-data"]["recipient"]
    refused = await api.http.post(MAILGUN, json=missing)
    assert refused.status_code == 422 and "event-data.recipient" in refused.json()["detail"]


async def test_without_a_signing_key_every_report_is_refused(tmp_path: Path, env, db) -> None:
    catalog = write_journeys(tmp_path / "journeys", {}, settings=API_SETTINGS)
    async with serve_api(env, db, catalog) as api:
        assert (await api.http.post(MAILGUN, json=_mailgun("mailgun_permanent_failure.json"))).status_code == 401
        assert (await api.http.post(POSTMARK, json=_postmark("postmark_hard_bounce.json"),
                                    headers=_basic(""))).status_code == 401


async def test_soft_bounces_suppress_at_the_limit_and_a_repeated_report_counts_once(api: Api) -> None:
    add_customer(_db(api), email=ADDRESS)
    sent = await _sent(api)
    for n in (1, 2):
        answer = await api.http.post(MAILGUN, json=_mailgun("mailgun_temporary_failure.json", event_id=f"soft-{n}"))
        assert answer.json()["suppressed"] is False
    repeat = await api.http.post(MAILGUN, json=_mailgun("mailgun_temporary_failure.json", event_id="soft-2"))
    assert repeat.json() == {"ok": True, "ignored": "duplicate", "suppressed": False}
    assert _suppressions(api)[0].soft_bounces == 2 and _customer(api).email_consent == "opted_in"
    third = await api.http.post(MAILGUN, json=_mailgun("mailgun_temporary_failure.json", event_id="soft-3"))
    assert third.json()["suppressed"] is True
    [suppression] = _suppressions(api)
    assert (suppression.reason, suppression.soft_bounces) == ("soft_bounces", 3)
    assert _customer(api).email_consent == "bounced"
    assert _row(api, sent.id).status == "sent"  # a soft bounce does not say this email never arrived
    # A captured signature (it covers the timestamp and token, not the body) on another report: a repeat.
    altered = await api.http.post(MAILGUN, json=_mailgun("mailgun_complained.json", recipient="bob@example.com",
                                                         event_id="soft-1"))
    assert altered.json()["ignored"] == "duplicate" and len(_suppressions(api)) == 1


async def test_a_mailgun_complaint_opts_out_and_suppresses(api: Api) -> None:
    add_customer(_db(api), email=ADDRESS)
    with session_scope(_db(api)) as session:
        texted = session.get(Customer, "c1")
        assert texted is not None
        texted.sms_consent = "opted_in"
        session.add(texted)
    sent = await _sent(api)
    answer = await api.http.post(MAILGUN, json=_mailgun("mailgun_complained.json",
                                                        message_id=(sent.provider_message_id or "")))
    assert answer.status_code == 200 and answer.json()["suppressed"] is True
    assert _row(api, sent.id).status == "complained"
    customer = _customer(api)
    assert (customer.email_consent, customer.sms_consent) == ("opted_out", "opted_in")  # email only
    assert (_email_records(api)[-1].status, _email_records(api)[-1].source) == ("opted_out", "email_complaint")
    assert _suppressions(api)[0].reason == "complaint"
    delivered = await api.http.post(MAILGUN, json=_mailgun("mailgun_delivered.json"))
    assert delivered.json() == {"ok": True, "ignored": "not_a_bounce_or_complaint", "suppressed": False}


async def test_postmark_bounces_and_complaints_behind_basic_auth(api: Api) -> None:
    add_customer(_db(api), email=ADDRESS)
    wrong = await api.http.post(POSTMARK, json=_postmark("postmark_hard_bounce.json"), headers=_basic("guess"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    assert (await api.http.post(POSTMARK, json=_postmark("postmark_hard_bounce.json"))).status_code == 401
    assert _suppressions(api) == []
    soft = await api.http.post(POSTMARK, json=_postmark("postmark_soft_bounce.json"), headers=_basic(POSTMARK_PASSWORD))
    assert soft.status_code == 200 and soft.json()["suppressed"] is False
    other = await api.http.post(POSTMARK, json=_postmark("postmark_hard_bounce.json", Type="AutoResponder", ID=7),
                                headers=_basic(POSTMARK_PASSWORD))
    assert other.json()["ignored"] == "not_a_bounce_or_complaint"
    missing = _postmark("postmark_hard_bounce.json")
    del missing["Email"]
    refused = await api.http.post(POSTMARK, json=missing, headers=_basic(POSTMARK_PASSWORD))
    assert refused.status_code == 422 and "Email" in refused.json()["detail"]
    hard = await api.http.post(POSTMARK, json=_postmark("postmark_hard_bounce.json"), headers=_basic(POSTMARK_PASSWORD))
    assert hard.status_code == 200 and hard.json()["suppressed"] is True
    assert _customer(api).email_consent == "bounced" and _suppressions(api)[0].reason == "hard_bounce"
    complaint = await api.http.post(POSTMARK, json=_postmark("postmark_spam_complaint.json"),
                                    headers=_basic(POSTMARK_PASSWORD))
    assert complaint.status_code == 200
    assert _customer(api).email_consent == "opted_out"  # a complaint is an opt-out, even after a bounce
    assert _suppressions(api)[0].reason == "hard_bounce"  # the first reason stays
    assert [(r.status, r.source) for r in _email_records(api)][-2:] == [
        ("bounced", "email_hard_bounce"), ("opted_out", "email_complaint")]

