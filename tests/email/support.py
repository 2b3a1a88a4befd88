"""A real SMTP server for the tests (aiosmtpd, on a free local port), whose answer to
DATA is scripted, and the send_email activity called directly, as a retry would."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message as MimeMessage
from typing import Any

from aiosmtpd.controller import Controller

from activities.deps import Deps
from activities.email import EmailActivities
from core.customers import email_consent
from language.models import EmailMessage
from messaging.senders.email import SmtpConfig, SmtpSender
from store.db import session_scope
from store.tables import Customer
from workflows.contracts import Facts, RunRef, SendEmailInput

MOMENT = datetime(2026, 3, 2, 15, tzinfo=UTC)
FROM = "Nordic Shoes <shop@nordic.example>"


@dataclass
class Relay:
    """What the server received, and how it answers DATA: ``reply`` (an SMTP reply line),
    after ``delay`` seconds (longer than the client's timeout: an answer that never comes)."""

    received: list[MimeMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    reply: str = "250 2.0.0 Ok: queued"
    delay: float = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_relay() -> Iterator[tuple[Relay, SmtpSender]]:
    relay = Relay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield relay, SmtpSender(SmtpConfig(host="127.0.0.1", port=port, security="none", timeout=1.0),
                                from_address=FROM)
    finally:
        controller.stop()


def add_customer(db: Any, *, email: str | None = "ada@example.com", consent: str = "opted_in") -> None:
    with session_scope(db) as session:
        customer = Customer(id="c1", phone="+12015550123", first_name="Ada", email=email, created_at=MOMENT,
                            updated_at=MOMENT)
        session.add(customer)
        session.flush()
        email_consent.record(session, customer, consent, source="test", at=MOMENT)


def activities(db: Any, catalog: Any, sender: Any) -> EmailActivities:
    return EmailActivities(Deps(catalog=catalog, db=db, sender=None, router=None,  # type: ignore[arg-type]
                                email_sender=sender))


def call(message: EmailMessage, *, purpose: str = "marketing", step_key: str = "cart_email") -> SendEmailInput:
    return SendEmailInput(run=RunRef(enrollment_id="e1", customer_id="c1", journey_id="promo", journey_version="v",
                                     simulated=True),
                          at=MOMENT, step_key=step_key, facts=Facts(entered_at=MOMENT), message=message,
                          purpose=purpose)  # type: ignore[arg-type]
