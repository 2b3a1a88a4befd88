"""The sending rules every SMS passes, in order: consent, phone, sunset (marketing),
quiet hours, caps.

Each rule answers with nothing (go on), a skip reason, or a time to try again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, exists, select

from core.customers import suppressions
from language.config import FrequencyCap, QuietHours, Sunset
from language.habits import REPLY_EVENT
from messaging.phone import sms_refusal
from store.tables import Click, ConsentRecord, Customer, Email, Event, Link, Message

# Messages that went out, or may have: they count toward frequency caps.
COUNTED_STATUSES = ("sending", "sent", "delivered", "undelivered", "unconfirmed")
# bounced and complained went out too (a provider reported on them later).
EMAIL_COUNTED = ("sending", "sent", "unconfirmed", "bounced", "complained")


@dataclass(frozen=True)
class Verdict:
    skip: str | None = None
    defer_until: datetime | None = None
    defer_reason: str | None = None

    @property
    def go(self) -> bool:
        return self.skip is None and self.defer_until is None


GO = Verdict()


def consent(customer: Customer, purpose: str) -> Verdict:
    if customer.sms_consent == "opted_out":
        return Verdict(skip="opted_out")
    if purpose == "marketing" and customer.sms_consent != "opted_in":
        return Verdict(skip="no_consent")
    return GO


def phone(session: Session, customer: Customer) -> Verdict:
    if not customer.phone or customer.phone_status != "ok" or sms_refusal(customer.phone):
        return Verdict(skip="invalid_phone")  # a premium-rate number stored before it was refused, ...
    suppression = suppressions.find(session, customer.phone)  # by number, or by hash if it was erased
    if suppression is not None:
        return Verdict(skip="opted_out" if suppression.reason == "opted_out" else "invalid_phone")
    return GO


def sunset(session: Session, customer: Customer, at: datetime, rule: Sunset | None) -> Verdict:
    """Skip (``sunset``) a marketing text to a subscriber who has not engaged for
    ``rule.after``: no click (bots aside), no reply, no purchase, and no opt-in (a new or
    returning subscriber gets the full time) and not created in that time. Off when None."""
    if rule is None:
        return GO
    since = at - rule.after
    for moment in (customer.created_at, customer.last_purchase_at):
        if moment is not None and moment > since:
            return GO
    recent = (
        exists().where(col(Link.customer_id) == customer.id, col(Click.link_code) == Link.code,
                       col(Click.bot).is_(None), col(Click.clicked_at) > since),
        exists().where(col(Event.customer_id) == customer.id, col(Event.type) == REPLY_EVENT,
                       col(Event.occurred_at) > since),
        exists().where(col(ConsentRecord.customer_id) == customer.id, col(ConsentRecord.status) == "opted_in",
                       col(ConsentRecord.occurred_at) > since),
    )
    if any(session.exec(select(engaged)).one() for engaged in recent):
        return GO
    return Verdict(skip="sunset")


def _at_local(day: datetime, clock: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime.combine(day.date(), time(hours, minutes), tzinfo=zone)


def quiet_hours_end(at: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime | None:
    """The end of the quiet window ``at`` falls in (customer's local time), or None."""
    local = at.astimezone(zone)
    start, end = _at_local(local, quiet.start, zone), _at_local(local, quiet.end, zone)
    if quiet.start == quiet.end:
        return None
    if start < end:  # a window within one day, e.g. 12:00-14:00
        return end if start <= local < end else None
    # A window across midnight, e.g. 21:00-08:00.
    if local >= start:
        return _at_local(local + timedelta(days=1), quiet.end, zone)
    if local < end:
        return end
    return None


def quiet_hours(at: datetime, zone: ZoneInfo, quiet: QuietHours) -> Verdict:
    end = quiet_hours_end(at, zone, quiet)
    return Verdict(defer_until=end, defer_reason="quiet_hours") if end else GO


def frequency_caps(session: Session, customer_id: str, at: datetime, caps: list[FrequencyCap],
                   on_capped: str, all_channels: list[FrequencyCap] | None = None) -> Verdict:
    """Marketing messages across all journeys; defer until the oldest one ages out.
    ``all_channels``: the caps that count texts and emails together (settings.yaml all_channels)."""
    release = capped_release(_text_times(session, customer_id, at, caps), at, caps)
    both = all_channels_release(session, customer_id, at, all_channels or [])
    if both is not None:
        release = both if release is None else max(release, both)
    if release is None:
        return GO
    if on_capped == "skip":
        return Verdict(skip="frequency_cap")
    return Verdict(defer_until=release, defer_reason="frequency_cap")


def capped_release(times: list[datetime], at: datetime, caps: list[FrequencyCap]) -> datetime | None:
    """When the caps let one more message go, given the send times that count (None: now)."""
    release: datetime | None = None
    for cap in caps:
        window = sorted(t for t in times if t > at - cap.per)
        if len(window) >= cap.max:
            frees_at = window[len(window) - cap.max] + cap.per
            release = frees_at if release is None else max(release, frees_at)
    return release


def all_channels_release(session: Session, customer_id: str, at: datetime,
                         caps: list[FrequencyCap]) -> datetime | None:
    """The cross-channel caps: marketing texts and emails counted together."""
    if not caps:
        return None
    longest = max(cap.per for cap in caps)
    emails = session.exec(select(Email.sent_at).where(
        Email.customer_id == customer_id, Email.purpose == "marketing", col(Email.status).in_(EMAIL_COUNTED),
        col(Email.sent_at) > at - longest, col(Email.sent_at) <= at)).all()
    times = _text_times(session, customer_id, at, caps) + [t for t in emails if t is not None]
    return capped_release(times, at, caps)


def _text_times(session: Session, customer_id: str, at: datetime, caps: list[FrequencyCap]) -> list[datetime]:
    if not caps:
        return []
    longest = max(cap.per for cap in caps)
    return [t for t in session.exec(
        select(Message.sent_at).where(
            Message.customer_id == customer_id,
            Message.purpose == "marketing",
            col(Message.counts_toward_caps).is_(True),
            col(Message.status).in_(COUNTED_STATUSES),
            col(Message.sent_at) > at - longest,
            col(Message.sent_at) <= at,
        )
    ).all() if t is not None]
