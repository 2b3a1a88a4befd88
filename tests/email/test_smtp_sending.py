"""send_email against a real SMTP server: the message arrives once, with the headers mail
clients need, and a retry (or a worker that died mid-send) never sends it twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from activities.email import message_id_for
from core.customers import email_consent
from language.models import EmailMessage
from messaging.senders.base import RetryableProviderError
from store.db import session_scope
from store.tables import Email
from tests.email.support import FROM, add_customer, call, smtp_relay
from tests.email.support import activities as email_activities
from tests.runtime.support import write_journeys

JOURNEY = """
id: promo
name: Promo
trigger: {event: signup}
steps:
  - id: cart_email
    send_email:
      subject: "Hi {{ customer.first_name }}"
      text: "Your cart: {{ link('https://shop.example/cart') }}"
"""
MESSAGE = EmailMessage(subject="{{ customer.first_name }}, your cart",
                       text="Still there: {{ link('https://shop.example/cart') }}",
                       html="<p>Hello {{ customer.first_name }} <b>&</b> {{ '<script>' }}</p>")


def _rows(db) -> list[Email]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        return list(session.exec(select(Email)).all())


async def test_the_email_arrives_once_with_the_headers_mail_clients_need(journeys_dir: Path, db) -> None:
    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db)
    with smtp_relay() as (relay, sender):
        acts = email_activities(db, catalog, sender)
        first = await acts.send_email(call(MESSAGE))
        again = await acts.send_email(call(MESSAGE))  # Temporal's retry of a send that succeeded
    assert first.status == again.status == "sent" and first.message_id == again.message_id
    assert len(relay.received) == 1
    mail = relay.received[0]
    assert relay.envelopes == [("shop@nordic.example", ["ada@example.com"])]
    assert mail["From"] == FROM and mail["To"] == "ada@example.com" and mail["Subject"] == "Ada, your cart"
    assert mail["Message-ID"] == message_id_for("e1:cart_email", FROM)
    assert mail["Message-ID"].endswith("@nordic.example>") and "ada@example" not in mail["Message-ID"]
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://localhost:8000/email/unsubscribe?t=") and "/email/unsubscribe?t=" in unsubscribe
    assert "ada@example" not in unsubscribe.lower() and "ada%40example" not in unsubscribe.lower()  # the token names the customer id, never the address
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in mail.walk()
             if not part.is_multipart()}
    assert "/l/" in parts["text/plain"] and unsubscribe.strip("<>") in parts["text/plain"]
    assert "Hello Ada <b>&</b> &lt;script&gt;" in parts["text/html"]  # values escaped, markup kept
    [row] = _rows(db)
    assert row.status == "sent" and row.provider == "smtp" and row.provider_message_id == mail["Message-ID"]
    with session_scope(db) as session:  # the link's token is this server's, for this customer and email
        assert email_consent.read_token(session, unsubscribe.split("t=")[1].rstrip(">")) == ("c1", row.id)


async def test_a_worker_that_died_mid_send_is_never_sent_twice(journeys_dir: Path, db) -> None:
    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db)
    with smtp_relay() as (relay, sender):
        acts = email_activities(db, catalog, sender)
        await acts.send_email(call(MESSAGE))
        with session_scope(db) as session:  # as a worker that handed it over and died leaves it
            row = session.exec(select(Email)).one()
            row.status = "sending"
            session.add(row)
        retried = await acts.send_email(call(MESSAGE))
    assert retried.status == "unconfirmed" and retried.reason == "provider_outcome_unknown"
    assert len(relay.received) == 1


async def test_no_answer_after_the_content_is_unconfirmed_and_not_resent(journeys_dir: Path, db) -> None:
    """The relay took the content but its answer never came (the client timed out): it may
    have accepted it, and SMTP cannot be asked, so it is recorded and never sent again."""
    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db)
    with smtp_relay() as (relay, sender):
        relay.delay = 2.0  # the client waits 1 s
        acts = email_activities(db, catalog, sender)
        outcome = await acts.send_email(call(MESSAGE))
        relay.delay = 0.0
        again = await acts.send_email(call(MESSAGE))
    assert outcome.status == again.status == "unconfirmed"
    assert len(relay.received) == 1 and _rows(db)[0].status == "unconfirmed"


async def test_a_relay_that_defers_is_retried_and_then_sends_once(journeys_dir: Path, db) -> None:
    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db)
    with smtp_relay() as (relay, sender):
        relay.reply = "451 4.3.0 Try again later"
        acts = email_activities(db, catalog, sender)
        with pytest.raises(RetryableProviderError):  # Temporal retries it
            await acts.send_email(call(MESSAGE))
        assert _rows(db)[0].status == "reserved"
        relay.reply = "250 2.0.0 Ok"
        outcome = await acts.send_email(call(MESSAGE))
    assert outcome.status == "sent" and len(relay.received) == 2  # the refused one, then the accepted one


async def test_a_permanent_refusal_is_recorded_failed(journeys_dir: Path, db) -> None:
    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db)
    with smtp_relay() as (relay, sender):
        relay.reply = "554 5.7.1 Rejected"
        outcome = await email_activities(db, catalog, sender).send_email(call(MESSAGE))
    assert outcome.status == "skipped" and _rows(db)[0].status == "failed" and _rows(db)[0].error_code == "554"


@pytest.mark.parametrize(("address", "consent", "purpose", "status", "reason"), [
    (None, "opted_in", "marketing", "skipped", "no_email"),
    ("ada@example.com", "none", "marketing", "skipped", "no_consent"),
    ("ada@example.com", "pending", "marketing", "skipped", "no_consent"),
    ("ada@example.com", "opted_out", "transactional", "skipped", "opted_out"),
    ("ada@example.com", "none", "transactional", "sent", None),
])
async def test_email_consent_decides_alone(journeys_dir: Path, db, address, consent, purpose, status,
                                           reason) -> None:
    """SMS consent is opted in for none of these customers: email follows its own."""
    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db, email=address, consent=consent)
    with smtp_relay() as (relay, sender):
        outcome = await email_activities(db, catalog, sender).send_email(call(MESSAGE, purpose=purpose))
    assert (outcome.status, outcome.reason) == (status, reason)
    assert len(relay.received) == (1 if status == "sent" else 0)
    if status == "sent":  # a transactional email carries no unsubscribe
        assert relay.received[0]["List-Unsubscribe"] is None


class _NoRuns:
    async def stop(self, workflow_id: str, reason: str) -> bool:
        return False


async def test_export_shows_the_emails_and_erasure_empties_them(journeys_dir: Path, db) -> None:
    from core.customers.erasure import erase_customer
    from core.customers.export import export_customer

    catalog = write_journeys(journeys_dir, {"promo": JOURNEY})
    add_customer(db)
    with smtp_relay() as (_, sender):
        await email_activities(db, catalog, sender).send_email(call(MESSAGE))
    [exported] = export_customer(db, "c1")["emails"]
    assert exported["subject"] == "Ada, your cart" and exported["status"] == "sent"
    report = await erase_customer(db, _NoRuns(), "c1", source="cli")
    assert report.counts["email_messages"] == 1
    [row] = _rows(db)
    assert (row.subject, row.body, row.html, row.status) == (None, None, None, "sent")
    with session_scope(db) as session:
        from store.tables import Customer

        customer = session.get(Customer, "c1")
        assert customer is not None and customer.email is None and customer.email_consent == "opted_out"
