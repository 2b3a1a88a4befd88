"""Models of the shared configuration files: settings, segments, loyalty, templates."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from language.durations import Duration, TimeOfDay
from language.models import MAX_POINTS, Expression, Identifier, Strict


class Sender(Strict):
    messaging_service_sid: str | None = None
    from_: str | None = Field(default=None, alias="from")


class QuietHours(Strict):
    start: TimeOfDay = "21:00"
    end: TimeOfDay = "08:00"


class FrequencyCap(Strict):
    max: int = Field(ge=1)
    per: Duration


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _region_code(code: str) -> str:
    from messaging.regions import region_problem  # phonenumbers: not at import (workflow sandbox)

    if problem := region_problem(code):
        raise ValueError(problem)
    return code


RegionCode = Annotated[str, AfterValidator(_region_code)]


class RegionRule(Strict):
    """A country's or US state's own rule for marketing texts, on top of the shop's
    window and caps: a text goes only when every rule that applies allows it.

    Read by local calendar day: on a day, the quiet times are those of ``quiet_hours``
    (21:00-08:00 is quiet from midnight to 08:00 and from 21:00 to midnight), or of that
    weekday's entry in ``weekday_quiet_hours``; a day in ``quiet_days`` is quiet all day."""

    quiet_hours: QuietHours | None = None
    weekday_quiet_hours: dict[Weekday, QuietHours] = Field(default_factory=dict)
    quiet_days: list[Weekday] = Field(default_factory=list)
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_day_left(self) -> RegionRule:
        if set(self.quiet_days) >= set(WEEKDAYS):
            raise ValueError("quiet_days names every day of the week: no text could ever go")
        return self


class OptIn(Strict):
    mode: Literal["single", "double"] = "single"


class Links(Strict):
    base_url: str = "http://localhost:8000"


class Replies(Strict):
    confirm: str = (
        "Reply YES to get loyalty texts. Msg & data rates may apply. "
        "Reply HELP for help, STOP to cancel."
    )
    welcome: str = "You're in! Msg & data rates may apply. Reply HELP for help, STOP to cancel."
    help: str = "Loyalty texts. Msg & data rates may apply. Reply STOP to cancel."
    stop: str = "You're unsubscribed and will get no more messages. Reply START to resubscribe."


# The words the engine itself answers (core/sms/inbound.py): STOP and its synonyms,
# START, YES and HELP. A text-to-join keyword may not be one of them.
RESERVED_KEYWORDS = frozenset({
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
    "START", "UNSTOP", "YES", "HELP", "INFO",
})


class TextToJoin(Strict):
    """Keywords that sign a number up by text (e.g. "Text JOIN to ..."): the whole
    message, any case and spacing. Off (no keywords) unless set: a sign-up by text is
    answered with the `confirm` or `welcome` reply, so set those to compliant texts
    (brand, message frequency, rates, HELP, STOP) before turning it on."""

    keywords: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("keywords")
    @classmethod
    def _single_words(cls, keywords: list[str]) -> list[str]:
        words: list[str] = []
        for raw in keywords:
            word = raw.strip().upper()
            if not word or not word.isalnum() or len(word) > 32:
                raise ValueError(f"text_to_join keyword {raw!r} must be one word of letters and digits (at most "
                                 "32), e.g. JOIN: the whole message is the keyword")
            if word in RESERVED_KEYWORDS:
                raise ValueError(f"text_to_join keyword {raw!r} is one the engine already answers "
                                 f"({', '.join(sorted(RESERVED_KEYWORDS))}): choose another, e.g. JOIN")
            if word in words:
                raise ValueError(f"text_to_join keyword {raw!r} is listed twice")
            words.append(word)
        return words


MIN_RETENTION = timedelta(days=7)


class RetentionPeriods(Strict):
    """How long personal data is kept (docs/operations.md "Retention"). ``null``: forever.
    Rows of running enrollments and events not yet routed are never touched, whatever
    the period; messages, links and events are anonymised (reports keep their totals),
    decisions deleted. ``inbound_messages`` holds no personal data and is kept: a
    deleted MessageSid could be replayed as a new message."""

    # Written as text so the JSON schema shows it so; validate_default parses it.
    events: Duration | None = "730d"  # type: ignore[assignment]
    messages: Duration | None = "730d"  # type: ignore[assignment]
    clicks: Duration | None = "730d"  # type: ignore[assignment]
    decisions: Duration | None = "90d"  # type: ignore[assignment]
    emails: Duration | None = "730d"  # type: ignore[assignment]  # email_messages: subjects and bodies

    @field_validator("*")
    @classmethod
    def _at_least_a_week(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < MIN_RETENTION:
            raise ValueError("a retention period is at least 7d (null keeps the data forever)")
        return value


class Costs(Strict):
    """What a text costs, for reports: the provider's price per segment."""

    sms_per_segment: float = Field(default=0.0, ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class ReportSettings(Strict):
    # A reply or a STOP counts for the last journey text the customer got before it, if
    # that text went out at most this long before. Written as text so the schema shows it so.
    attribution_window: Duration = "48h"  # type: ignore[assignment]


class Sunset(Strict):
    """Stop marketing texts to subscribers who stopped engaging: no click, no reply and no
    purchase for ``after`` (counted from their opt-in when they never engaged)."""

    after: Duration


class EmailSettings(Strict):
    """Email's own sending rules: caps count marketing emails only, apart from the SMS caps;
    quiet hours only if set (an email waits in the inbox). Default: none of either."""

    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None
    # Soft bounces (a full mailbox, a server down) of one address before it is suppressed.
    soft_bounce_limit: int = Field(default=3, ge=1, le=100)
    # double: an email opt-in is pending until the customer follows the link in a confirmation email.
    opt_in: Literal["single", "double"] = "single"


class AllChannels(Strict):
    """Caps that count marketing texts and emails together, on top of each channel's own.
    Default: none."""

    frequency_caps: list[FrequencyCap] = Field(default_factory=list)


class Settings(Strict):
    brand: str = "Our shop"
    sender: Sender = Field(default_factory=Sender)
    default_country: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    default_timezone: str = "UTC"
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    frequency_caps: list[FrequencyCap] = Field(
        default_factory=lambda: [FrequencyCap(max=1, per="24h"), FrequencyCap(max=4, per="7d")]
    )
    # Rules per country ("DE") or US state ("US-FL"), added to the shipped state rules
    # (core/sms/regional_defaults.py): both apply, the stricter wins; none can loosen them.
    regions: dict[RegionCode, RegionRule] = Field(default_factory=dict)
    email: EmailSettings = Field(default_factory=EmailSettings)
    all_channels: AllChannels = Field(default_factory=AllChannels)
    opt_in: OptIn = Field(default_factory=OptIn)
    links: Links = Field(default_factory=Links)
    replies: Replies = Field(default_factory=Replies)
    text_to_join: TextToJoin = Field(default_factory=TextToJoin)
    # A text over this many segments is skipped (too_long), not sent; Twilio takes at most 10.
    max_segments: int = Field(default=10, ge=1, le=10)
    # An event for a customer id nobody created: create a bare profile for it (the event
    # may come before the profile) or refuse it (POST /events answers 404, nothing stored).
    unknown_customers: Literal["create", "reject"] = "create"
    retention: RetentionPeriods = Field(default_factory=RetentionPeriods)
    sunset: Sunset | None = None  # off unless set


    costs: Costs = Field(default_factory=Costs)
    reports: ReportSettings = Field(default_factory=ReportSettings)


class RuleSegment(Strict):
    rule: Expression
    description: str | None = None


class ManualSegment(Strict):
    manual: Literal[True]
    description: str | None = None


class Segments(Strict):
    # Written as text so the JSON schema shows it so; validate_default parses it (a timedelta default reads PT1H).
    refresh: Duration = "1h"  # type: ignore[assignment]
    # Re-evaluate the rules an event's data change touches for that customer at once
    # (core/segments/immediate.py); the refresh stays for the clock and as a safety net.
    immediate: bool = True
    segments: dict[Identifier, RuleSegment | ManualSegment] = Field(default_factory=dict)


class PointsRules(Strict):
    per_currency_unit: float = Field(default=1, ge=0)
    expire_after: Duration | None = None
    expiry_reminder: Duration | None = None


class Tier(Strict):
    name: Identifier
    min_points: int = Field(ge=0)


class PunchCard(Strict):
    every: int = Field(ge=1)
    reward_points: int = Field(ge=0, le=MAX_POINTS)


class Referral(Strict):
    referrer_points: int = Field(default=0, ge=0, le=MAX_POINTS)
    referee_points: int = Field(default=0, ge=0, le=MAX_POINTS)


class CouponSeries(Strict):
    discount: str
    expires_in: Duration | None = None
    prefix: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,8}$")
    # Codes come from a pool imported with `journeys coupons import` (the shop's platform
    # makes them) instead of being generated; an empty pool issues nothing.
    pool: bool = False
    # Codes created in the shop's platform before the text goes out (core/loyalty/shop_codes.py):
    # Shopify under the merchant's price rule (it holds value, type and expiry); WooCommerce
    # as a coupon of ``type`` and ``value``, expiring with ``expires_in``.
    platform: Literal["shopify", "woocommerce"] | None = None
    price_rule_id: int | None = Field(default=None, ge=1)
    type: Literal["percent", "fixed"] | None = None
    value: float | None = Field(default=None, gt=0, le=1_000_000)

    @model_validator(mode="after")
    def _platform_fields(self) -> CouponSeries:
        if self.platform is not None and self.pool:
            raise ValueError("a platform-backed series makes its codes in the shop: pool and platform go apart")
        if self.platform == "shopify" and self.price_rule_id is None:
            raise ValueError("platform shopify needs price_rule_id (the price rule the codes belong to)")
        if self.platform == "woocommerce" and (self.type is None or self.value is None):
            raise ValueError("platform woocommerce needs type (percent or fixed) and value")
        if self.platform is None and any(v is not None for v in (self.price_rule_id, self.type, self.value)):
            raise ValueError("price_rule_id, type and value apply only with platform: shopify or woocommerce")
        if self.type == "percent" and self.value is not None and self.value > 100:
            raise ValueError("a percent value is at most 100")
        return self


class Reward(Strict):
    """What points buy: ``points`` are spent for one coupon of the series ``coupon``."""

    points: int = Field(ge=1, le=MAX_POINTS)
    coupon: str
    description: str | None = None


def _keyword(word: str) -> str:
    word = word.strip().upper()
    if not word.isalnum() or len(word) > 32:
        raise ValueError(f"rewards_keyword {word!r} must be one word of letters and digits (at most 32), e.g. REDEEM")
    if word in RESERVED_KEYWORDS:
        raise ValueError(f"rewards_keyword {word!r} is one the engine already answers: choose another, e.g. REDEEM")
    return word


class Loyalty(Strict):
    points: PointsRules = Field(default_factory=PointsRules)
    tiers: list[Tier] = Field(default_factory=list)
    punch_card: PunchCard | None = None
    referral: Referral | None = None
    coupons: dict[str, CouponSeries] = Field(default_factory=dict)
    rewards: dict[Identifier, Reward] = Field(default_factory=dict)
    # The SMS keyword that spends points: "REDEEM" alone or "REDEEM <reward>" (core/sms/redeem.py).
    rewards_keyword: Annotated[str, AfterValidator(_keyword)] = "REDEEM"

    @model_validator(mode="after")
    def _tiers_ascending(self) -> Loyalty:
        thresholds = [t.min_points for t in self.tiers]
        if thresholds != sorted(thresholds):
            raise ValueError("tiers must be listed from the lowest min_points to the highest")
        return self

    @model_validator(mode="after")
    def _rewards_known_series(self) -> Loyalty:
        for name, reward in self.rewards.items():
            if reward.coupon not in self.coupons:
                known = ", ".join(sorted(self.coupons)) or "none"
                raise ValueError(f"reward {name!r}: unknown coupon series {reward.coupon!r} (series under "
                                 f"coupons: {known})")
            if self.coupons[reward.coupon].platform is not None:
                raise ValueError(f"reward {name!r}: coupon series {reward.coupon!r} is made in "
                                 f"{self.coupons[reward.coupon].platform}, which rewards do not support yet: "
                                 "use a series without platform (a pool of the shop's codes, for instance)")
        return self

    def tier_for(self, points_last_12_months: int) -> str | None:
        tier = None
        for t in self.tiers:
            if points_last_12_months >= t.min_points:
                tier = t.name
        return tier


class TemplateFile(Strict):
    """journeys/templates/<name>.yaml: the text per locale (an SMS template), or the
    subject, text and html per locale (an email template); the first locale is the fallback.
    Which locales each part has is checked with positions (language.checks_email)."""

    description: str | None = None
    text: dict[str, str] = Field(default_factory=dict)
    subject: dict[str, str] | None = None
    html: dict[str, str] | None = None

    @property
    def is_email(self) -> bool:
        return self.subject is not None

    @model_validator(mode="after")
    def _one_kind(self) -> TemplateFile:
        if self.subject is None and self.html is not None:
            raise ValueError("an email template needs 'subject' (per locale) besides 'html'")
        if self.subject is None and not self.text:
            raise ValueError("give 'text' (per locale) for an SMS template, or 'subject' and 'text' or 'html' "
                             "for an email template")
        if self.subject is not None and not self.subject:
            raise ValueError("'subject' needs at least one locale")
        return self
