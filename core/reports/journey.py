"""The journey report: entries, outcomes, every step's texts, the goal and each split,
per journey version (an edit makes a new version: its numbers are never mixed with the
old one's). A pure function of the tables: the CLI, the API and a dashboard render it.

Which runs: those that ENTERED in [since, until) (all when not given). Everything those
runs did is counted, whenever it happened. Every figure is a GROUP BY in the database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, and_, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel import select as select_rows

from core.reports.outline import OutlineStep, outline
from core.reports.sql import not_indexed, report_connection, shifted
from core.reports.stats import Lift, lift
from language.config import Settings
from language.models import Journey, SplitStep
from store.db import Database, session_scope
from store.tables import Click, ConsentRecord, Coupon, Email, Enrollment, Event, JourneyVersion, Message

# Handed to the provider (and so billed); `undelivered` was sent, then lost by the carrier.
SENT = ("sent", "delivered", "undelivered")
FAILED = ("failed", "undelivered")
NEVER = datetime.max.replace(tzinfo=UTC)


class Unknown(LookupError):
    """No such journey: neither in the catalog nor in any stored version."""


class SendFigures(BaseModel):
    sent: int = Field(0, description="Handed to the provider: sent, delivered or undelivered")
    delivered: int = Field(0, description="Confirmed delivered by the carrier's receipt")
    failed: int = Field(0, description="Refused by the provider (failed) or lost by the carrier (undelivered)")
    unconfirmed: int = Field(0, description="The provider may or may not have it (settling)")
    deferred: int = Field(0, description="Waiting for a send window (quiet hours, caps)")
    skipped: dict[str, int] = Field(default_factory=dict, description="Not sent, by reason")
    segments: int = Field(0, description="SMS segments sent (reprompts included)")
    cost: float = Field(0.0, description="segments x costs.sms_per_segment")
    unique_clicks: int = Field(0, description="Runs with at least one click on this text's links (bots excluded)")
    total_clicks: int = Field(0, description="Every click on this text's links (bots excluded)")
    click_through_rate: float | None = Field(None, description="unique_clicks / delivered")
    replies: int = Field(0, description="Replies attributed to this text")
    opt_outs: int = Field(0, description="STOPs attributed to this text")
    coupons_issued: int = 0
    coupons_redeemed: int = 0


class StepFigures(BaseModel):
    key: str = Field(description="The step id, or its path when it has none")
    kind: str
    summary: str
    depth: int
    branch: str | None
    reached: int | None = Field(description="Runs that reached the step; None where no table records it")
    send: SendFigures | None = None


class GoalFigures(BaseModel):
    event: str
    conversions: int
    conversion_rate: float | None = Field(description="conversions / entries")
    revenue: float = Field(description="Sum of the goal's value over conversions")
    revenue_per_message: float | None = Field(description="revenue / texts sent")


class VariantFigures(BaseModel):
    name: str
    holdout: bool
    entered: int
    converted: int
    conversion_rate: float | None
    revenue: float
    revenue_per_customer: float | None
    lift: Lift | None = Field(description="Against the holdout (None for the holdout itself, or without one)")


class SplitFigures(BaseModel):
    name: str
    step: str
    holdout: str | None = Field(description="The variant with no steps, if any")
    variants: list[VariantFigures]


class VersionFigures(BaseModel):
    version: str
    current: bool = Field(description="The version the journeys directory has now")
    first_seen_at: datetime | None
    entries: int
    active: int
    outcomes: dict[str, int] = Field(description="Ended runs by outcome: completed, exited:<event>, an exit's name")
    messages_sent: int = Field(description="Texts sent, over every send_sms and ask step")
    emails_sent: int = Field(0, description="Emails the relay accepted, over every send_email step")
    delivered: int = Field(description="Texts confirmed delivered, over every sending step")
    unique_clicks: int = Field(description="Sum over the texting steps of their unique clicks")
    click_through_rate: float | None = Field(description="unique_clicks / delivered")
    segments: int
    cost: float
    steps: list[StepFigures]
    goal: GoalFigures | None
    splits: list[SplitFigures]


class JourneyReport(BaseModel):
    journey_id: str
    name: str | None
    since: datetime | None
    until: datetime | None
    currency: str
    attribution_window_seconds: int
    versions: list[VersionFigures] = Field(description="Newest first")


def journey_report(db: Database, journey_id: str, *, settings: Settings, current: Journey | None = None,
                   current_version: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, version: str | None = None) -> JourneyReport:
    """The report of ``journey_id``. ``current``: the catalog's definition (for a version
    no customer entered yet). Raises Unknown."""
    with session_scope(db, readonly=True) as session:
        stored = {v.version: v for v in session.exec(
            select_rows(JourneyVersion).where(col(JourneyVersion.journey_id) == journey_id)).all()}
    definitions: dict[str, tuple[Journey, datetime | None]] = {
        v: (Journey.model_validate(row.definition), row.first_seen_at) for v, row in stored.items()}
    if current is not None and current_version and current_version not in definitions:
        definitions[current_version] = (current, None)
    if not definitions:
        raise Unknown(f"no journey {journey_id!r}")
    if version is not None:
        if version not in definitions:
            raise Unknown(f"journey {journey_id!r} has no version {version!r}")
        definitions = {version: definitions[version]}
    with report_connection(db) as connection:
        query = _Queries(connection, journey_id, since, until, set(definitions), settings)
        versions = [query.version(v, journey, seen, current=v == current_version)
                    for v, (journey, seen) in definitions.items()]
    versions.sort(key=lambda v: (v.current, v.first_seen_at or NEVER), reverse=True)
    name = current.name if current is not None else next(iter(definitions.values()))[0].name
    return JourneyReport(journey_id=journey_id, name=name, since=since, until=until,
                         currency=settings.costs.currency,
                         attribution_window_seconds=int(settings.reports.attribution_window.total_seconds()),
                         versions=versions)


class _Queries:
    """One GROUP BY per figure family, over all the versions at once."""

    def __init__(self, connection: Connection, journey_id: str, since: datetime | None, until: datetime | None,
                 versions: set[str], settings: Settings) -> None:
        self.connection, self.journey_id, self.since, self.until = connection, journey_id, since, until
        self.versions, self.settings = versions, settings
        self.price = settings.costs.sms_per_segment
        self.runs = self._runs()
        self.messages = self._messages()
        self.emails = self._emails()
        self.clicks = self._clicks()
        window = settings.reports.attribution_window
        self.replies = self._attributed(Event, col(Event.customer_id), col(Event.occurred_at),
                                        col(Event.type) == "sms_replied", window, once_per_text=False)
        self.opt_outs = self._attributed(ConsentRecord, col(ConsentRecord.customer_id), col(ConsentRecord.occurred_at),
                                         and_(col(ConsentRecord.status) == "opted_out",
                                              col(ConsentRecord.source) == "sms_keyword"), window, once_per_text=True)
        self.coupons = self._coupons()
        self.splits: dict[str, dict[tuple[str, str], tuple[int, int, float]]] = {}  # by split name, lazily

    # --- the runs -------------------------------------------------------------------------

    def _entered(self, query: Any) -> Any:
        """Only this journey's runs, of the asked versions, that entered in the period."""
        query = query.where(col(Enrollment.journey_id) == self.journey_id,
                            col(Enrollment.journey_version).in_(self.versions))
        if self.since is not None:
            query = query.where(col(Enrollment.entered_at) >= self.since)
        if self.until is not None:
            query = query.where(col(Enrollment.entered_at) < self.until)
        return query

    def _of_runs(self, query: Any, table: Any, *, indexed: bool = True) -> Any:
        """Only the rows of ``table`` (messages, links, emails, coupons) of the counted runs: by the journey
        and version written on the row, so no join to enrollments; a period's runs by id.
        ``indexed=False``: SQLite drives the query from its other table (see not_indexed)."""
        journey = col(table.journey_id) if indexed else not_indexed(self.connection, col(table.journey_id))
        query = query.where(journey == self.journey_id,
                            col(table.journey_version).in_(self.versions))
        if self.since is not None or self.until is not None:
            query = query.where(col(table.enrollment_id).in_(self._entered(select(col(Enrollment.id)))))
        return query

    def _rows(self, query: Any) -> list[Any]:
        return list(self.connection.execute(query))

    def _runs(self) -> dict[str, list[Any]]:
        rows = self._rows(self._entered(
            select(col(Enrollment.journey_version), col(Enrollment.status), col(Enrollment.outcome), func.count(),
                   func.count(col(Enrollment.converted_at)),
                   func.coalesce(func.sum(col(Enrollment.conversion_value)), 0.0))
        ).group_by(col(Enrollment.journey_version), col(Enrollment.status), col(Enrollment.outcome)))
        found: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            found[row[0]].append(row)
        return found

    def _messages(self) -> dict[tuple[str, str], list[Any]]:
        rows = self._rows(self._of_runs(
            select(col(Message.journey_version), col(Message.step_id), col(Message.status), col(Message.reason),
                   col(Message.counts_toward_caps), func.count(), func.coalesce(func.sum(col(Message.segments)), 0)),
            Message
        ).group_by(col(Message.journey_version), col(Message.step_id), col(Message.status), col(Message.reason),
                   col(Message.counts_toward_caps)))
        found: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in rows:
            found[(row[0], row[1])].append(row)
        return found

    def _emails(self) -> dict[tuple[str, str], list[Any]]:
        rows = self._rows(self._of_runs(
            select(col(Email.journey_version), col(Email.step_id), col(Email.status), col(Email.reason), func.count()),
            Email
        ).group_by(col(Email.journey_version), col(Email.step_id), col(Email.status), col(Email.reason)))
        found: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in rows:
            found[(row[0], row[1])].append(row)
        return found

    def _clicks(self) -> dict[tuple[str, str], tuple[int, int]]:
        # Clicks carry their link's run, version and step (migration 0022): counted from
        # their own table, an index-only GROUP BY; unique clickers are distinct runs.
        rows = self._rows(self._of_runs(
            select(col(Click.journey_version), col(Click.step_id),
                   func.count(func.distinct(col(Click.enrollment_id))), func.count(col(Click.id)))
            .where(col(Click.bot).is_(None)),
            Click
        ).group_by(col(Click.journey_version), col(Click.step_id)))
        return {(r[0], r[1]): (r[2], int(r[3])) for r in rows}

    def _attributed(self, source: Any, customer: Any, moment: Any, which: Any, window: timedelta,
                    *, once_per_text: bool) -> dict[tuple[str, str], int]:
        """Rows of ``source`` (replies, STOPs) per text: each counts for the customer's
        last journey text sent at most ``window`` before it (any journey's: a later text
        of another journey takes it)."""
        later = aliased(Message)
        newer_text = exists().where(
            col(later.customer_id) == col(Message.customer_id), col(later.enrollment_id).is_not(None),
            col(later.status).in_(SENT), col(later.sent_at) > col(Message.sent_at), col(later.sent_at) <= moment)
        counted = func.count(func.distinct(col(Message.id))) if once_per_text else func.count()
        query = self._of_runs(
            select(col(Message.journey_version), col(Message.step_id), counted)
            .select_from(source)
            .join(Message, and_(col(Message.customer_id) == customer, col(Message.sent_at) <= moment,
                                col(Message.sent_at) > shifted(self.connection, moment, -window)))
            .where(which, col(Message.status).in_(SENT), ~newer_text),
            Message, indexed=False
        ).group_by(col(Message.journey_version), col(Message.step_id))
        return {(r[0], r[1]): r[2] for r in self._rows(query)}

    def _coupons(self) -> dict[tuple[str, str], tuple[int, int]]:
        # Each coupon records the text that issued it (activities/sending.py): counted from
        # the coupons table alone, by ix_coupons_report.
        rows = self._rows(self._of_runs(
            select(col(Coupon.journey_version), col(Coupon.step_id), func.count(), func.count(col(Coupon.redeemed_at))),
            Coupon
        ).group_by(col(Coupon.journey_version), col(Coupon.step_id)))
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def _variants(self, version: str, split: str) -> dict[str, tuple[int, int, float]]:
        """A split's entries, conversions and revenue per variant: one query per split name
        for every version at once (each reads the runs' variants from the table)."""
        if split not in self.splits:
            variant = col(Enrollment.variants)[split].as_string()
            rows = self._rows(self._entered(
                select(col(Enrollment.journey_version), variant, func.count(), func.count(col(Enrollment.converted_at)),
                       func.coalesce(func.sum(col(Enrollment.conversion_value)), 0.0))
                .where(variant.is_not(None))
            ).group_by(col(Enrollment.journey_version), variant))
            self.splits[split] = {(r[0], r[1]): (r[2], r[3], float(r[4])) for r in rows}
        return {name: counts for (of, name), counts in self.splits[split].items() if of == version}

    # --- one version ------------------------------------------------------------------------

    def version(self, version: str, journey: Journey, first_seen: datetime | None, *, current: bool) -> VersionFigures:
        runs = self.runs.get(version, [])
        entries = sum(r[3] for r in runs)
        conversions = sum(r[4] for r in runs)
        revenue = float(sum(r[5] for r in runs))
        outcomes: dict[str, int] = defaultdict(int)
        for r in runs:
            if r[1] != "active":
                outcomes[r[2] or "unknown"] += r[3]
        steps = [self._step(version, s) for s in outline(journey.steps)]
        sends = [s.send for s in steps if s.send is not None and s.kind != "send_email"]
        emails_sent = sum(s.send.sent for s in steps if s.send is not None and s.kind == "send_email")
        sent = sum(s.sent for s in sends)
        delivered = sum(s.delivered for s in sends)
        clicks = sum(s.unique_clicks for s in sends)
        segments = sum(s.segments for s in sends)
        splits = [self._split(version, s) for s in outline(journey.steps) if isinstance(s.step, SplitStep)]
        for split, figures in zip((s for s in steps if s.kind == "split"), splits, strict=True):
            split.reached = sum(v.entered for v in figures.variants)
        goal = None
        if journey.goal is not None:
            goal = GoalFigures(event=journey.goal.event, conversions=conversions,
                               conversion_rate=_ratio(conversions, entries), revenue=revenue,
                               revenue_per_message=_ratio(revenue, sent))
        return VersionFigures(
            version=version, current=current, first_seen_at=first_seen, entries=entries,
            active=sum(r[3] for r in runs if r[1] == "active"), outcomes=dict(sorted(outcomes.items())),
            messages_sent=sent, emails_sent=emails_sent, delivered=delivered, unique_clicks=clicks,
            click_through_rate=_ratio(clicks, delivered), segments=segments, cost=round(segments * self.price, 6),
            steps=steps, goal=goal, splits=splits)

    def _step(self, version: str, step: OutlineStep) -> StepFigures:
        figures = StepFigures(key=step.key, kind=step.kind, summary=step.summary, depth=step.depth,
                              branch=step.branch, reached=None)
        if not step.sends:
            return figures
        key = (version, step.key)
        send = SendFigures()
        reached = 0
        if step.kind == "send_email":
            # 'sent': the relay took it (email has no delivery receipts); a link in it is a Link row as for a text.
            for _, _, status, reason, count in self.emails.get(key, []):
                reached += count
                send.sent += count if status == "sent" else 0
                send.failed += count if status == "failed" else 0
                send.unconfirmed += count if status == "unconfirmed" else 0
                send.deferred += count if status == "deferred" else 0
                if status == "skipped":
                    send.skipped[reason or "unknown"] = send.skipped.get(reason or "unknown", 0) + count
            send.skipped = dict(sorted(send.skipped.items()))
            send.unique_clicks, send.total_clicks = self.clicks.get(key, (0, 0))
            send.click_through_rate = _ratio(send.unique_clicks, send.sent)
            figures.reached, figures.send = reached, send
            return figures
        for _, _, status, reason, primary, count, segments in self.messages.get(key, []):
            if status in SENT:
                send.segments += int(segments)
            if not primary:  # a reprompt: its segments cost, it is not another text of the step
                continue
            reached += count
            if status in SENT:
                send.sent += count
            if status == "delivered":
                send.delivered += count
            if status in FAILED:
                send.failed += count
            if status == "unconfirmed":
                send.unconfirmed += count
            if status == "deferred":
                send.deferred += count
            if status == "skipped":
                send.skipped[reason or "unknown"] = send.skipped.get(reason or "unknown", 0) + count
        send.skipped = dict(sorted(send.skipped.items()))
        send.cost = round(send.segments * self.price, 6)
        send.unique_clicks, send.total_clicks = self.clicks.get(key, (0, 0))
        send.click_through_rate = _ratio(send.unique_clicks, send.delivered)
        send.replies = self.replies.get(key, 0)
        send.opt_outs = self.opt_outs.get(key, 0)
        send.coupons_issued, send.coupons_redeemed = self.coupons.get(key, (0, 0))
        figures.reached, figures.send = reached, send
        return figures

    def _split(self, version: str, step: OutlineStep) -> SplitFigures:
        assert isinstance(step.step, SplitStep)
        spec = step.step.split
        counts = self._variants(version, spec.name)
        holdout = next((v.name for v in spec.variants if not v.steps), None)
        base = counts.get(holdout or "", (0, 0, 0.0))
        variants = []
        for variant in spec.variants:
            entered, converted, revenue = counts.get(variant.name, (0, 0, 0.0))
            compared = (lift(converted, entered, base[1], base[0])
                        if holdout is not None and variant.name != holdout else None)
            variants.append(VariantFigures(
                name=variant.name, holdout=variant.name == holdout, entered=entered, converted=converted,
                conversion_rate=_ratio(converted, entered), revenue=revenue,
                revenue_per_customer=_ratio(revenue, entered), lift=compared))
        return SplitFigures(name=spec.name, step=step.key, holdout=holdout, variants=variants)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None
