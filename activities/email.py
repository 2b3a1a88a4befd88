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
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import Deps, moment, run_key
from activities.sending import message_context, pick_locale
from core.customers import email_consent, email_suppressions
from core.customers.records import get_customer
from core.journeys.controls import held
from core.loyalty.coupons import CouponPoolEmpty
from core.sms import rules, zones
from language.config import FrequencyCap, Settings
from language.expressions import ExpressionError, render
from language.models import EmailMessage
from messaging.senders.base import AmbiguousProviderError, PermanentProviderError, RetryableProviderError
from messaging.senders.email import OutgoingEmail
from store.db import session_scope
from store.tables import Customer, Email
from workflows import activity_names as names
from workflows.contracts import SendEmailInput, SendOutcome

log = logging.getLogger(__name__)

# bounced and complained: sent, then a provider's webhook reported it (core/customers/email_feedback.py)
FINAL_STATUSES = ("sent", "failed", "skipped", "unconfirmed", "bounced", "complained")
COUNTED = rules.EMAIL_COUNTED  # went out, or may have: they count toward the email caps


def message_id_for(key: str, sender: str) -> str:
    """The Message-ID header: the same for every attempt of one (run, step), and no personal data."""
    domain = sender.rpartition("@")[2].strip(" >") or "journeys.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def outcome_of(row: Email) -> SendOutcome:
    if row.status == "deferred":
        return SendOutcome(status="deferred", reason=row.reason, defer_until=row.defer_until, message_id=row.id)
    if row.status in ("sent", "bounced", "complained"):
        return SendOutcome(status="sent", message_id=row.id)
    if row.status == "unconfirmed":  # final for email: nothing to ask, never sent again
        return SendOutcome(status="unconfirmed", reason=row.reason, message_id=row.id)
    return SendOutcome(status="skipped", reason=row.reason, message_id=row.id)


def verdict(customer: Customer, purpose: str) -> str | None:
    """A skip reason, or None: an address, and for marketing an opt-in to email (not SMS)."""
    if not customer.email:
        return "no_email"
    if customer.email_consent in ("opted_out", "bounced"):  # bounced: the address was suppressed
        return customer.email_consent
    if purpose == "marketing" and customer.email_consent != "opted_in":
        return "no_consent"
    return None


def capped_until(session: Session, customer_id: str, at: datetime, caps: list[FrequencyCap],
                 all_channels: list[FrequencyCap] | None = None) -> datetime | None:
    """When the email caps (marketing emails only) and the cross-channel caps (texts and
    emails together) let one more marketing email go (None: now)."""
    release: datetime | None = None
    if caps:
        longest = max(cap.per for cap in caps)
        times = [t for t in session.exec(select(Email.sent_at).where(
            Email.customer_id == customer_id, Email.purpose == "marketing", col(Email.status).in_(COUNTED),
            col(Email.sent_at) > at - longest, col(Email.sent_at) <= at)).all() if t is not None]
        release = rules.capped_release(times, at, caps)
    both = rules.all_channels_release(session, customer_id, at, all_channels or [])
    if both is not None:
        release = both if release is None else max(release, both)
    return release


def quiet_until(customer: Customer, at: datetime, settings: Settings) -> datetime | None:
    """The end of the email quiet hours in the customer's zone, if set and now inside them."""
    quiet = settings.email.quiet_hours
    if quiet is None:
        return None
    return zones.quiet_hours(at, zones.send_zones(customer, settings.default_timezone), quiet).defer_until


@dataclass(frozen=True)
class EmailParts:
    subject: str
    text: str | None
    html: str | None


def email_parts(spec: EmailMessage, locale: str | None) -> EmailParts:
    """The inline parts, or the template's for the customer's locale (exact, language, first):
    one locale for all three, so a subject never comes in one language and the body in another."""
    if spec.template is None:
        return EmailParts(spec.subject or "", spec.text, spec.html)
    subjects = spec.subjects or {}
    chosen = pick_locale(list(subjects), locale)
    return EmailParts(subjects.get(chosen, ""), (spec.texts or {}).get(chosen), (spec.htmls or {}).get(chosen))


class _Text(HTMLParser):
    """An HTML part's words, for a template locale that has no plain-text part."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a" and (href := dict(attrs).get("href")):
            self.parts.append(f"{href} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def plain_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line).strip()


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
                                    journey_version=input.run.journey_version, step_id=input.step_key,
                                    purpose=input.purpose, created_at=at)
            hold = held(session, input.run.journey_id, input.run.journey_version, at)
            if hold is not None:  # an operator paused the journey: the email waits
                row.status, row.reason, row.defer_until, row.updated_at = "deferred", hold[1], hold[0], at
                session.add(row)
                return outcome_of(row)
            skip = verdict(customer, input.purpose)
            suppression = email_suppressions.find(session, customer.email) if skip is None and customer.email \
                else None
            if suppression is not None:  # a hard bounce, a complaint, too many soft bounces: whoever has it now
                skip = f"suppressed_{suppression.reason}"
            settings = self.deps.catalog.settings
            quiet = quiet_until(customer, at, settings) if skip is None and input.purpose == "marketing" else None
            if quiet is not None:  # a wait, never a reason to skip (nor to switch channel)
                row.status, row.reason, row.defer_until, row.updated_at = "deferred", "quiet_hours", quiet, at
                session.add(row)
                return outcome_of(row)
            release = capped_until(session, customer.id, at, settings.email.frequency_caps,
                                   settings.all_channels.frequency_caps) \
                if skip is None and input.purpose == "marketing" else None
            if release is not None and input.on_capped == "skip":
                skip = "frequency_cap"
            elif release is not None:
                row.status, row.reason, row.defer_until, row.updated_at = "deferred", "frequency_cap", release, at
                session.add(row)
                return outcome_of(row)
            if skip is None:
                try:
                    context = message_context(self.deps, session, input, customer, row, at)
                    sources = email_parts(input.message, customer.locale)
                    subject = " ".join(render(sources.subject, context).split())  # one line, always
                    html = render(sources.html, context, html=True) if sources.html is not None else None
                    text = render(sources.text, context).strip() if sources.text is not None \
                        else plain_text(html or "")
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
