"""The send activity: the sending rules in order, then the provider, exactly once; and
the settle activity, which turns an unknown outcome into a known one.

Exactly once rests on the message key (run, step): the row is written before the
provider is called and marked ``sending``. A retry that finds ``sending`` (the worker
died mid-call), a timeout or a 5xx cannot know whether the provider got the request:
the message is ``unconfirmed`` and the journey waits for ``settle_sms``, which asks the
provider's own records. Found: ``sent``, with its id. Provably absent after the grace
period: released (``reserved``) and sent again through the rules. Never sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import Deps, moment, run_key
from core.clock import utcnow
from core.customers.context import expression_context
from core.customers.numbers import apply_provider_error
from core.customers.records import get_customer
from core.event import EventIn
from core.journeys.controls import held
from core.loyalty import shop_codes
from core.loyalty.coupons import CouponPoolEmpty
from core.loyalty.coupons import issue as issue_coupon
from core.sms import rules
from core.sms.regions import send_regions
from core.sms.settlement import settle
from core.sms.zones import quiet_hours as zones_quiet_hours
from core.sms.zones import send_zones
from language.checks_values import url_problem
from language.expressions import ExpressionError, TooLong, customer_reads, reads_name, render
from language.models import Message as MessageSpec
from messaging.encoding import analyze
from messaging.senders.base import (
    AmbiguousProviderError,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
)
from store.db import session_scope
from store.tables import Coupon, Customer, Email, Enrollment, Event, Link, Message
from workflows import activity_names as names
from workflows.contracts import SendInput, SendOutcome, SettleInput, StepCall

log = logging.getLogger(__name__)

CREDENTIAL_CODES = ("20003",)  # authentication failed: a configuration problem
FINAL_STATUSES = ("sent", "delivered", "undelivered", "failed", "skipped", "unconfirmed")
_ALPHABET = string.ascii_letters + string.digits
# A text whose coupon code the shop's platform does not have yet waits this long, then tries again.
SHOP_CODE_RETRY = timedelta(minutes=5)


@dataclass(frozen=True)
class ShopCodesNeeded:
    """The text is rendered, but these codes must be created in the shop first."""

    codes: list[str]


def pick_text(message: MessageSpec, locale: str | None) -> str:
    """Inline text, or the template's text for the customer's locale (exact, language, first)."""
    if message.text is not None:
        return message.text
    texts = message.texts or {}
    return texts.get(pick_locale(list(texts), locale), "")


def pick_locale(locales: list[str], locale: str | None) -> str:
    """Of a template's locales, the customer's: exact, else the language, else the first."""
    if locale:
        for candidate in (locale, locale.split("-")[0].split("_")[0]):
            if candidate in locales:
                return candidate
    return locales[0] if locales else ""


def outcome_of(row: Message, settle_after: timedelta) -> SendOutcome:
    zone = {"send_zone": row.send_zone, "send_rule": row.send_rule, "send_region": row.send_region}
    if row.status == "deferred":
        return SendOutcome(status="deferred", reason=row.reason, defer_until=row.defer_until, message_id=row.id,
                           **zone)
    if row.status in ("skipped", "failed"):
        return SendOutcome(status="skipped", reason=row.reason, message_id=row.id, encoding=row.encoding,
                           segments=row.segments, **zone)
    if row.status == "unconfirmed":
        attempted = row.sent_at or row.updated_at or row.created_at
        return SendOutcome(status="unconfirmed", reason=row.reason, message_id=row.id,
                           settle_at=attempted + settle_after, encoding=row.encoding, segments=row.segments,
                           **zone)
    return SendOutcome(status="sent", message_id=row.id, encoding=row.encoding, segments=row.segments, **zone)


class SendingActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=names.SEND_SMS)
    async def send_sms(self, input: SendInput) -> SendOutcome:
        try:
            outcome = await self._send(input)
        except Exception as err:  # counted, then retried by Temporal as before
            self.deps.metrics.sent(input.run.journey_id, "error", type(err).__name__)
            raise
        self.deps.metrics.sent(input.run.journey_id, outcome.status, outcome.reason)
        return outcome

    async def _send(self, input: SendInput) -> SendOutcome:
        key = run_key(input)
        reserved: SendOutcome | ShopCodesNeeded | tuple[Message, OutgoingSms] | None = await asyncio.to_thread(
            self._reserve, input, key)
        if isinstance(reserved, ShopCodesNeeded):
            # Part of the send rather than an activity of its own: no workflow change (runs in
            # flight replay as before), and Temporal's retries of the send retry this too.
            pushed = await asyncio.to_thread(shop_codes.push, self.deps.db, reserved.codes, self.deps.shops,
                                             self.deps.catalog.loyalty.coupons, moment(input))
            reserved = await asyncio.to_thread(self._reserve, input, key) if pushed.ok else None
            if not isinstance(reserved, tuple | SendOutcome):
                return await asyncio.to_thread(self._defer_for_codes, key, pushed.reason or "shop_code_unavailable",
                                               moment(input))
        if not isinstance(reserved, tuple):
            assert isinstance(reserved, SendOutcome)
            return reserved
        outcome, follow_ups = await asyncio.to_thread(self._call_provider, reserved)
        for event in follow_ups:  # a carrier-level opt-out: every journey must hear of it
            await self.deps.router.route(event, source="provider", origin=input.run.enrollment_id)
        return outcome

    # --- rules and reservation, atomically per customer ----------------------------------

    def _defer_for_codes(self, key: str, reason: str, at: datetime) -> SendOutcome:
        with session_scope(self.deps.db) as session:
            row = session.exec(select(Message).where(Message.key == key)).one()
            row.status, row.reason, row.defer_until, row.updated_at = "deferred", reason, at + SHOP_CODE_RETRY, at
            session.add(row)
            log.warning("message %s (step %s) deferred: %s", row.id, row.step_id, reason)
            return outcome_of(row, self.deps.settle_after)

    def _reserve(self, input: SendInput, key: str) -> SendOutcome | ShopCodesNeeded | tuple[Message, OutgoingSms]:
        settings = self.deps.catalog.settings
        at = moment(input)
        with session_scope(self.deps.db) as session:
            customer = get_customer(session, input.run.customer_id, for_update=True)
            existing = session.exec(select(Message).where(Message.key == key)).first()
            # Looked at under the customer's lock, so two overlapping attempts cannot both send.
            if existing is not None and existing.status in FINAL_STATUSES:
                return outcome_of(existing, self.deps.settle_after)
            if existing is not None and existing.status == "sending":
                existing.status, existing.reason = "unconfirmed", "provider_outcome_unknown"
                session.add(existing)
                log.warning("message %s: an earlier attempt may have reached the provider; settling", existing.id)
                return outcome_of(existing, self.deps.settle_after)
            row = existing or Message(
                id=uuid.uuid4().hex, key=key, customer_id=customer.id, enrollment_id=input.run.enrollment_id,
                journey_id=input.run.journey_id, journey_version=input.run.journey_version,
                step_id=input.step_key.removesuffix(".reprompt"),
                purpose=input.purpose, counts_toward_caps=not input.reprompt,
                expects_reply=input.expects_reply, created_at=at,
            )
            verdict = self._verdict(session, input, customer, row, at)
            if verdict.skip:
                row.status, row.reason, row.updated_at = "skipped", verdict.skip, at
                session.add(row)
                return outcome_of(row, self.deps.settle_after)
            if verdict.defer_until:
                row.status, row.reason, row.defer_until, row.updated_at = (
                    "deferred", verdict.defer_reason, verdict.defer_until, at)
                session.add(row)
                return outcome_of(row, self.deps.settle_after)
            if input.message.media_url and url_problem(input.message.media_url):  # pinned before the check
                row.status, row.reason, row.updated_at = "skipped", "invalid_media_url", at
                session.add(row)
                return outcome_of(row, self.deps.settle_after)
            try:
                body, with_codes = self._render(session, input, customer, row, at)
            except CouponPoolEmpty as err:  # nothing to give: the text would promise a code it lacks
                log.error("message %s (step %s) not sent: coupon_pool_empty (series %s)", row.id, row.step_id,
                          err.series)
                row.status, row.reason, row.updated_at = "skipped", "coupon_pool_empty", at
                session.add(row)
                return outcome_of(row, self.deps.settle_after)
            except ExpressionError as err:
                # The step and the kind of failure, never the message: it may quote customer data.
                reason = "too_long" if isinstance(err, TooLong) else "render_error"
                log.error("message %s (step %s) not sent: %s (%s)", row.id, row.step_id, reason, err.kind)
                row.status, row.reason, row.updated_at = "skipped", reason, at
                session.add(row)
                return outcome_of(row, self.deps.settle_after)
            info = analyze(body)
            refusal = self._refusal(body, info.segments)
            if refusal:
                log.error("message %s (step %s) not sent: %s (%d segments)", row.id, row.step_id, refusal,
                          info.segments)
                row.status, row.reason, row.updated_at = "skipped", refusal, at
                row.encoding, row.segments = info.encoding, info.segments  # the body is not kept
                session.add(row)
                return outcome_of(row, self.deps.settle_after)
            codes = shop_codes.waiting(session, key) if with_codes else []
            if codes:  # a text that may go out, its codes issued and reserved: the shop must have them first
                row.status, row.updated_at = "reserved", at
                session.add(row)
                return ShopCodesNeeded(codes)
            row.body, row.encoding, row.segments = body, info.encoding, info.segments
            row.status, row.reason, row.sent_at, row.updated_at = "sending", None, at, at
            row.provider = self.deps.sender.name
            session.add(row)
            if not input.reprompt:
                session.execute(update(Enrollment).where(col(Enrollment.id) == input.run.enrollment_id)
                                .values(last_message_at=at))
            callback = f"{settings.links.base_url.rstrip('/')}/twilio/status?m={row.id}"
            sms = OutgoingSms(to=customer.phone or "", body=body, media_url=input.message.media_url,
                              status_callback=callback, message_key=key)
            return row, sms

    def _refusal(self, body: str, segments: int) -> str | None:
        """A text that must not go out whatever the rules say: over the configured number of
        segments, or holding a server secret (defence in depth: no text can read one)."""
        if segments > self.deps.catalog.settings.max_segments:
            return "too_long"
        if any(secret in body for secret in self.deps.secrets):
            return "secret_in_text"
        return None

    def _verdict(self, session: Session, input: SendInput, customer: Customer, row: Message,
                 at: datetime) -> rules.Verdict:
        settings = self.deps.catalog.settings
        hold = held(session, input.run.journey_id, input.run.journey_version, at)
        if hold is not None:  # an operator paused the journey: every text waits, whatever its purpose
            return rules.Verdict(defer_until=hold[0], defer_reason=hold[1])
        for verdict in (rules.consent(customer, input.purpose), rules.phone(session, customer)):
            if not verdict.go:
                return verdict
        # A reprompt answers the customer who just wrote: no quiet hours, no caps.
        if input.purpose != "marketing" or input.reprompt:
            return rules.GO
        verdict = rules.sunset(session, customer, at, settings.sunset)  # skip, never defer: they stopped engaging
        if not verdict.go:
            return verdict
        zones = send_zones(customer, settings.default_timezone)
        regions = send_regions(customer, settings)  # the number's and the profile's state/country rules
        # Kept on the row: which clock decided, and which region rules applied on top of the shop's.
        row.send_zone, row.send_rule, row.send_region = zones.name, zones.rule, regions.name
        verdict = zones_quiet_hours(at, zones, settings.quiet_hours, regions.windows)
        if not verdict.go:
            return verdict
        caps = [*settings.frequency_caps, *regions.caps]  # every cap counts: the stricter wins
        return rules.frequency_caps(session, customer.id, at, caps, input.on_capped,
                                    settings.all_channels.frequency_caps)

    def _render(self, session: Session, input: SendInput, customer: Customer, row: Message,
                at: datetime) -> tuple[str, bool]:
        """The text, and whether it carries coupon codes (only then may the shop lack some)."""
        text = pick_text(input.message, customer.locale)
        codes: list[str] = []
        context = message_context(self.deps, session, input, customer, row, at,
                                  reads=customer_reads(text, template=True), named_codes=codes,
                                  trigger=reads_name(text, "trigger", template=True))
        return render(text, context).strip(), bool(codes)

    # --- the provider ----------------------------------------------------------------

    def _call_provider(self, reserved: tuple[Message, OutgoingSms]) -> tuple[SendOutcome, list[EventIn]]:
        row, sms = reserved
        try:
            receipt = self.deps.sender.send(sms)
        except PermanentProviderError as err:
            if err.code in CREDENTIAL_CODES:
                # Our configuration, not this message: keep it and retry until ops fix the
                # credentials, rather than fail every text sent during the outage.
                log.error("the SMS provider rejected our credentials (%s): check TWILIO_AUTH_TOKEN", err.code)
                self._settle(row, "reserved")
                raise ApplicationError(f"provider credentials rejected ({err.code})") from None
            follow_ups = apply_provider_error(self.deps.db, row.customer_id, err.code, row.sent_at or utcnow(),
                                              event_id=f"send:{row.id}:opted_out")
            return self._settle(row, "failed", reason=err.reason, error_code=err.code), follow_ups
        except AmbiguousProviderError as err:
            log.warning("message %s: provider outcome unknown (%s); settling", row.id, err.reason)
            return self._settle(row, "unconfirmed", reason="provider_outcome_unknown"), []
        except RetryableProviderError:
            # The provider certainly did not take it: free the reservation, let Temporal retry
            # (the rules run again then: a retry that ends in quiet hours is deferred).
            self._settle(row, "reserved")
            raise
        return self._settle(row, "sent", provider_message_id=receipt.provider_message_id), []

    def _settle(self, row: Message, status: str, **fields: str | None) -> SendOutcome:
        """The provider's answer onto the reserved row (``row``, as reserved): one UPDATE, no
        read first; these fields are written whatever the row holds by now, as they always were."""
        values: dict[str, Any] = {"status": status, **fields}
        if status == "reserved":
            values["sent_at"] = None
        with session_scope(self.deps.db) as session:
            session.execute(update(Message).where(col(Message.id) == row.id).values(**values))
        for name, value in values.items():
            setattr(row, name, value)
        return outcome_of(row, self.deps.settle_after)

    # --- settling an unknown outcome ---------------------------------------------------------

    @activity.defn(name=names.SETTLE_SMS)
    async def settle_sms(self, input: SettleInput) -> SendOutcome:
        return await asyncio.to_thread(self._settle_unknown, input)

    def _settle_unknown(self, input: SettleInput) -> SendOutcome:
        settled = settle(self.deps.db, self.deps.sender, input.message_id, at=moment(input),
                         grace=self.deps.settle_after, any_time=input.run.simulated)
        self.deps.metrics.settlements.labels(settled).inc()
        if settled == "absent":
            return SendOutcome(status="absent", message_id=input.message_id)
        with session_scope(self.deps.db, readonly=True) as session:
            return self._outcome_or_missing(session.get(Message, input.message_id), input.message_id)

    def _outcome_or_missing(self, row: Message | None, message_id: str) -> SendOutcome:
        if row is None:
            raise ApplicationError(f"no message {message_id}", non_retryable=True)
        return outcome_of(row, self.deps.settle_after)


def message_context(deps: Deps, session: Session, input: StepCall, customer: Customer, row: Message | Email,
                    at: datetime, reads: frozenset[str] | None = None, named_codes: list[str] | None = None,
                    trigger: bool = True) -> dict[str, Any]:
    """What a message's templates see, with ``link()`` and ``coupon()`` keyed by the message:
    a retry renders the same short links and the same codes. ``named_codes``: gets the issue
    key of every code the templates name; ``trigger``: False when they do not read it (not loaded)."""
    settings = deps.catalog.settings
    coupons = deps.catalog.loyalty.coupons

    def link(url: str) -> str:
        if reason := url_problem(str(url)):  # from data: the validator saw only quoted targets
            raise ExpressionError(f"link() target {reason}")
        found = session.exec(select(Link).where(Link.message_key == row.key, Link.url == url)).first()
        if found is None:
            found = Link(code=_random_code(7), message_key=row.key, url=str(url), customer_id=customer.id,
                         enrollment_id=input.run.enrollment_id, journey_id=input.run.journey_id,
                         journey_version=input.run.journey_version, step_id=row.step_id, created_at=at)
            session.add(found)
            session.flush()
        return f"{settings.links.base_url.rstrip('/')}/l/{found.code}"

    def coupon(series: str) -> str:
        issue_key = f"{row.key}:{series}"
        if named_codes is not None:
            named_codes.append(issue_key)
        found = session.exec(select(Coupon).where(Coupon.key == issue_key)).first()
        if found is not None:
            return found.code
        spec = coupons.get(series)
        if spec is None:  # removed from loyalty.yaml after this version went live
            raise ExpressionError(f"no coupon series {series!r} in loyalty.yaml")
        if spec.platform is not None and isinstance(row, Email):
            # Only the SMS send creates codes in the shop first: an email must not carry one it lacks.
            raise ExpressionError(f"coupon series {series!r} is made in {spec.platform}: texts only, not email")
        issued = issue_coupon(session, series, spec, key=issue_key, customer_id=customer.id, at=at, text=row)
        shop_codes.reserve(session, issued, spec, at)  # platform-backed: created in the shop before the text
        return issued.code

    loaded = session.get(Event, input.run.trigger_event_id) if trigger and input.run.trigger_event_id else None
    return expression_context(session, deps.catalog, customer, at, trigger=loaded, run=input.run,
                              facts=input.facts, extra_functions={"link": link, "coupon": coupon}, reads=reads)


def _random_code(length: int, *, upper: bool = False) -> str:
    alphabet = string.ascii_uppercase + string.digits if upper else _ALPHABET
    return "".join(secrets.choice(alphabet) for _ in range(length))
