"""The send_email activity: the email rules, then the relay, exactly once.

Exactly once rests on the message key (run, step), as for texts: the row is written and
marked ``sending`` before the relay is called, and the Message-ID header is derived from
the key. A retry that finds ``sending`` (the worker died mid-call), or a relay that gave
no final answer after the content went out (a timeout, a dropped connection), cannot
know whether the relay accepted it, and SMTP offers no way to ask: the email is settled
``unconfirmed`` and never sent again ("never twice" rather than "at least once"). Only a
relay that provably did not take it (no connection, a 4xx) frees the row for a retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import html as html_escape
import logging
import uuid
from datetime import datetime

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import Deps, moment, run_key
from activities.sending import message_context
from core.customers import email_consent
from core.customers.records import get_customer
from core.journeys.controls import held
from core.loyalty.coupons import CouponPoolEmpty
from language.config import FrequencyCap
from language.expressions import ExpressionError, render
from messaging.senders.base import AmbiguousProviderError, PermanentProviderError, RetryableProviderError
from messaging.senders.email import OutgoingEmail
from store.db import session_scope
from store.tables import Customer, Email
from workflows import activity_names as names
from workflows.contracts import SendEmailInput, SendOutcome

log = logging.getLogger(__name__)

FINAL_STATUSES = ("sent", "failed", "skipped", "unconfirmed")
COUNTED = ("sending", "sent", "unconfirmed")  # went out, or may have: they count toward the email caps


def message_id_for(key: str, sender: str) -> str:
    """The Message-ID header: the same for every attempt of one (run, step), and no personal data."""
    domain = sender.rpartition("@")[2].strip(" >") or "journeys.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def outcome_of(row: Email) -> SendOutcome:
    if row.status == "deferred":
        return SendOutcome(status="deferred", reason=row.reason, defer_until=row.defer_until, message_id=row.id)
    if row.status == "sent":
        return SendOutcome(status="sent", message_id=row.id)
    if row.status == "unconfirmed":  # final for email: nothing to ask, never sent again
        return SendOutcome(status="unconfirmed", reason=row.reason, message_id=row.id)
    return SendOutcome(status="skipped", reason=row.reason, message_id=row.id)


def verdict(customer: Customer, purpose: str) -> str | None:
    """A skip reason, or None: an address, and for marketing an opt-in to email (not SMS)."""
    if not customer.email:
        return "no_email"
    if customer.email_consent == "opted_out":
        return "opted_out"
    if purpose == "marketing" and customer.email_consent != "opted_in":
        return "no_consent"
    return None


def capped_until(session: Session, customer_id: str, at: datetime, caps: list[FrequencyCap]) -> datetime | None:
    """When the email caps let one more marketing email go (None: now). Email counts apart from SMS."""
    if not caps:
        return None
    longest = max(cap.per for cap in caps)
    times = sorted(t for t in session.exec(select(Email.sent_at).where(
        Email.customer_id == customer_id, Email.purpose == "marketing", col(Email.status).in_(COUNTED),
        col(Email.sent_at) > at - longest, col(Email.sent_at) <= at)).all() if t is not None)
    release: datetime | None = None
    for cap in caps:
        window = [t for t in times if t > at - cap.per]
        if len(window) >= cap.max:
            frees_at = window[len(window) - cap.max] + cap.per
            release = frees_at if release is None else max(release, frees_at)
    return release


class EmailActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=names.SEND_EMAIL)
    async def send_email(self, input: SendEmailInput) -> SendOutcome:
        reserved = await asyncio.to_thread(self._reserve, input, run_key(input))
        if isinstance(reserved, SendOutcome):
            return reserved
        row_id, email = reserved
        sender = self.deps.email_sender
        try:
            receipt = await sender.send(email)
        except PermanentProviderError as err:
            if err.code == "smtp_auth":  # our configuration, not this email: keep it, retry
                log.error("the SMTP relay rejected our credentials: check JOURNEYS_SMTP_USERNAME/PASSWORD")
                await asyncio.to_thread(self._settle, row_id, "reserved")
                raise ApplicationError("SMTP credentials rejected") from None
            return await asyncio.to_thread(self._settle, row_id, "failed", reason=err.reason, error_code=err.code)
        except AmbiguousProviderError as err:
            log.warning("email %s: relay outcome unknown (%s); not sent again", row_id, err.reason)
            return await asyncio.to_thread(self._settle, row_id, "unconfirmed", reason="provider_outcome_unknown")
        except RetryableProviderError:
            await asyncio.to_thread(self._settle, row_id, "reserved")  # provably not taken: retried
            raise
        return await asyncio.to_thread(self._settle, row_id, "sent", provider_message_id=receipt.provider_message_id)

    def _reserve(self, input: SendEmailInput, key: str) -> SendOutcome | tuple[str, OutgoingEmail]:
        at = moment(input)
        sender = self.deps.email_sender
        with session_scope(self.deps.db) as session:
            customer = get_customer(session, input.run.customer_id, for_update=True)
            existing = session.exec(select(Email).where(Email.key == key)).first()
            if existing is not None and existing.status in FINAL_STATUSES:
                return outcome_of(existing)
            if existing is not None and existing.status == "sending":
                existing.status, existing.reason, existing.updated_at = "unconfirmed", "provider_outcome_unknown", at
                session.add(existing)
                log.warning("email %s: an earlier attempt may have reached the relay; not sent again", existing.id)
                return outcome_of(existing)
            row = existing or Email(id=uuid.uuid4().hex, key=key, customer_id=customer.id,
                                    enrollment_id=input.run.enrollment_id, journey_id=input.run.journey_id,
                                    step_id=input.step_key, purpose=input.purpose, created_at=at)
            hold = held(session, input.run.journey_id, input.run.journey_version, at)
            if hold is not None:  # an operator paused the journey: the email waits
                row.status, row.reason, row.defer_until, row.updated_at = "deferred", hold[1], hold[0], at
                session.add(row)
                return outcome_of(row)
            skip = verdict(customer, input.purpose)
            caps = self.deps.catalog.settings.email.frequency_caps
            release = capped_until(session, customer.id, at, caps) if skip is None and input.purpose == "marketing" \
                else None
            if release is not None and input.on_capped == "skip":
                skip = "frequency_cap"
            elif release is not None:
                row.status, row.reason, row.defer_until, row.updated_at = "deferred", "frequency_cap", release, at
                session.add(row)
                return outcome_of(row)
            if skip is None:
                try:
                    context = message_context(self.deps, session, input, customer, row, at)
                    spec = input.message
                    subject = " ".join(render(spec.subject, context).split())  # one line, always
                    text = render(spec.text, context).strip()
                    html = render(spec.html, context, html=True) if spec.html is not None else None
                except CouponPoolEmpty:
                    skip = "coupon_pool_empty"
                except ExpressionError as err:  # the kind, never the text: it may quote customer data
                    log.error("email %s (step %s) not sent: render_error (%s)", row.id, row.step_id, err.kind)
                    skip = "render_error"
            if skip is None and any(s in part for s in self.deps.secrets for part in (subject, text, html or "")):
                skip = "secret_in_text"
            if skip is not None:
                row.status, row.reason, row.updated_at = "skipped", skip, at
                session.add(row)
                return outcome_of(row)
            unsubscribe = None
            if input.purpose == "marketing":  # RFC 8058 header, and the same link in the body
                token = email_consent.unsubscribe_token(session, customer.id, row.id)
                unsubscribe = f"{self.deps.catalog.settings.links.base_url.rstrip('/')}/email/unsubscribe?t={token}"
                text += f"\n\nUnsubscribe: {unsubscribe}"
                if html is not None:
                    html += f'\n<p><a href="{html_escape.escape(unsubscribe)}">Unsubscribe</a></p>'
            row.subject, row.body, row.html = subject, text, html
            row.status, row.reason, row.sent_at, row.updated_at = "sending", None, at, at
            row.provider = sender.name
            session.add(row)
            email = OutgoingEmail(to=customer.email or "", sender=sender.from_address, subject=subject, text=text,
                                  html=html, message_id=message_id_for(key, sender.from_address),
                                  unsubscribe_url=unsubscribe, message_key=key)
            return row.id, email

    def _settle(self, row_id: str, status: str, **fields: str | None) -> SendOutcome:
        with session_scope(self.deps.db) as session:
            row = session.get(Email, row_id)
            assert row is not None
            row.status = status
            for name, value in fields.items():
                setattr(row, name, value)
            if status == "reserved":
                row.sent_at = None
            session.add(row)
            return outcome_of(row)
