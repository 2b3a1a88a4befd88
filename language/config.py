"""Models of the shared configuration files: settings, segments, loyalty, templates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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


class Costs(Strict):
    """What a text costs, for reports: the provider's price per segment."""

    sms_per_segment: float = Field(default=0.0, ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class ReportSettings(Strict):
    # A reply or a STOP counts for the last journey text the customer got before it, if
    # that text went out at most this long before. Written as text so the schema shows it so.
    attribution_window: Duration = "48h"  # type: ignore[assignment]


class Settings(Strict):
    brand: str = "Our shop"
    sender: Sender = Field(default_factory=Sender)
    default_country: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    default_timezone: str = "UTC"
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    frequency_caps: list[FrequencyCap] = Field(
        default_factory=lambda: [FrequencyCap(max=1, per="24h"), FrequencyCap(max=4, per="7d")]
    )
    opt_in: OptIn = Field(default_factory=OptIn)
    links: Links = Field(default_factory=Links)
    replies: Replies = Field(default_factory=Replies)
    # A text over this many segments is skipped (too_long), not sent; Twilio takes at most 10.
    max_segments: int = Field(default=10, ge=1, le=10)
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


class Loyalty(Strict):
    points: PointsRules = Field(default_factory=PointsRules)
    tiers: list[Tier] = Field(default_factory=list)
    punch_card: PunchCard | None = None
    referral: Referral | None = None
    coupons: dict[str, CouponSeries] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tiers_ascending(self) -> Loyalty:
        thresholds = [t.min_points for t in self.tiers]
        if thresholds != sorted(thresholds):
            raise ValueError("tiers must be listed from the lowest min_points to the highest")
        return self

    def tier_for(self, points_last_12_months: int) -> str | None:
        tier = None
        for t in self.tiers:
            if points_last_12_months >= t.min_points:
                tier = t.name
        return tier


class TemplateFile(Strict):
    """journeys/templates/<name>.yaml: the text per locale; the first is the fallback."""

    description: str | None = None
    text: dict[str, str] = Field(min_length=1)
