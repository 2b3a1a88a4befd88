"""The database tables. Every side effect of a journey lands here, keyed so a retry
finds the row it wrote the first time (exactly-once by unique business keys)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from store.types import UtcDateTime


def _ts(**kwargs: Any) -> Any:
    """A timezone-aware timestamp column (stored as UTC)."""
    nullable = kwargs.pop("nullable", True)
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, **kwargs), default=None)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: str = Field(primary_key=True, max_length=64)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164; never in logs
    phone_status: str = Field(default="ok", max_length=20)  # ok | invalid | unusable
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    locale: str | None = Field(default=None, max_length=16)
    timezone: str | None = Field(default=None, max_length=64)
    birthday: date | None = None
    attributes: dict = _json(dict)
    sms_consent: str = Field(default="none", max_length=16)  # none | pending | opted_in | opted_out
    email_consent: str = Field(default="none", max_length=16)  # the same, for email: kept apart
    # Derived from events; kept on the row so segment rules can run as SQL.
    orders_count: int = 0
    total_spent: float = 0.0
    first_purchase_at: datetime | None = _ts()
    last_purchase_at: datetime | None = _ts(index=True)
    points: int = 0
    tier: str | None = Field(default=None, max_length=32)
    referral_code: str | None = Field(default=None, max_length=32, unique=True)
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class Purchase(SQLModel, table=True):
    """Each purchase event, kept so segment rules can count orders and spend in a window
    (``customer.orders_in('90d')``) as SQL; written with the event, in its transaction."""

    __tablename__ = "purchases"

    event_id: str = Field(primary_key=True, max_length=128)
    customer_id: str = Field(max_length=64)
    occurred_at: datetime = _ts(nullable=False)
    total: float = 0.0

    __table_args__ = (Index("ix_purchases_customer_occurred", "customer_id", "occurred_at"),)


class PurchaseItem(SQLModel, table=True):
    """One line item of a purchase (its ``items`` property): what ``customer.bought('coffee')``
    and ``customer.categories`` read."""

    __tablename__ = "purchase_items"

    event_id: str = Field(primary_key=True, max_length=128)
    line: int = Field(primary_key=True)  # the item's place in the purchase's list
    customer_id: str = Field(max_length=64)
    product: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    quantity: int = 1
    price: float | None = None
    occurred_at: datetime = _ts(nullable=False)

    __table_args__ = (Index("ix_purchase_items_customer_category", "customer_id", "category"),
                      Index("ix_purchase_items_customer_product", "customer_id", "product"))


class ConsentRecord(SQLModel, table=True):
    """Evidence for every consent change: who, when, how, and the exact text shown."""

    __tablename__ = "consent_records"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=64)
    status: str = Field(max_length=16)
    source: str = Field(max_length=64)  # api | sms_keyword | import | journey:<id> | ...
    channel: str = Field(default="sms", max_length=8)  # sms | email: which consent it changed
    disclosure: str | None = None
    occurred_at: datetime = _ts(nullable=False)
    recorded_at: datetime = _ts(nullable=False)


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: str = Field(primary_key=True, max_length=128)  # the sender's event id: idempotency key
    customer_id: str = Field(index=True, max_length=64)
    type: str = Field(index=True, max_length=64)
    occurred_at: datetime = _ts(nullable=False)
    received_at: datetime = _ts(nullable=False)
    properties: dict = _json(dict)
    source: str = Field(default="api", max_length=64)
    # Set once the event has been signalled to running journeys and has started the
    # ones it triggers: a repeat of an event stored but not routed (Temporal was down)
    # is routed again, rather than taken for a duplicate.
    routed_at: datetime | None = _ts()
    # Set when retention reduced ``properties`` to their non-personal keys (core/retention.py).
    anonymised_at: datetime | None = _ts()

    __table_args__ = (
        Index("ix_events_retention", "anonymised_at", "received_at", "id"),
        Index("ix_events_type_occurred", "type", "occurred_at"),  # reports: purchases per period
        # segment rules and the sunset rule: one customer's replies in a window (replies_in)
        Index("ix_events_customer_type_occurred", "customer_id", "type", "occurred_at"),
    )


class JourneyVersion(SQLModel, table=True):
    __tablename__ = "journey_versions"

    journey_id: str = Field(primary_key=True, max_length=64)
    version: str = Field(primary_key=True, max_length=32)
    definition: dict = _json(dict)
    first_seen_at: datetime = _ts(nullable=False)


class Enrollment(SQLModel, table=True):
    """One customer's run through one journey: where they are and how it ended."""

    __tablename__ = "enrollments"

    id: str = Field(primary_key=True, max_length=40)
    journey_id: str = Field(index=True, max_length=64)
    journey_version: str = Field(max_length=32)
    customer_id: str = Field(index=True, max_length=64)
    workflow_id: str = Field(max_length=200)
    trigger_event_id: str | None = Field(default=None, max_length=128)
    occasion: str | None = Field(default=None, max_length=128)  # schedule/date run key
    # A keyed run (the journey's run_key): the key's hash (workflows.io.run_key_hash), never the key.
    run_key: str | None = Field(default=None, max_length=16)
    status: str = Field(default="active", max_length=16, index=True)  # active | ended
    current_step: str | None = Field(default=None, max_length=128)
    variants: dict = _json(dict)
    outcome: str | None = Field(default=None, max_length=128)
    entered_at: datetime = _ts(nullable=False)
    # Set once Temporal has the run: an active row without it is a half-made entry, which
    # whoever finds it next finishes (starts), never discards.
    started_at: datetime | None = _ts()
    ended_at: datetime | None = _ts()
    last_message_at: datetime | None = _ts()
    converted_at: datetime | None = _ts()
    conversion_value: float | None = None

    __table_args__ = (
        UniqueConstraint("journey_id", "customer_id", "occasion", name="uq_enrollment_occasion"),
        # One active run per journey, customer and run key (unkeyed runs: Temporal's workflow id).
        Index("uq_enrollments_active_run_key", "journey_id", "customer_id", "run_key", unique=True,
              sqlite_where=text("status = 'active' AND run_key IS NOT NULL"),
              postgresql_where=text("status = 'active' AND run_key IS NOT NULL")),
        # Reports: a journey's runs per version, every column the report reads (answered from the index).
        Index("ix_enrollments_report_runs", "journey_id", "journey_version", "entered_at", "id", "status", "outcome",
              "converted_at", "conversion_value"),
    )


class Email(SQLModel, table=True):
    """An outgoing email, from reservation to the relay's answer. ``key`` makes it exactly-once:
    the row is written (``sending``) before the relay is called, and its Message-ID is
    derived from the key."""

    __tablename__ = "email_messages"

    id: str = Field(primary_key=True, max_length=40)
    key: str = Field(unique=True, max_length=200)  # <enrollment>:<step>
    customer_id: str = Field(index=True, max_length=64)
    enrollment_id: str | None = Field(default=None, index=True, max_length=40)
    journey_id: str | None = Field(default=None, max_length=64)
    journey_version: str | None = Field(default=None, max_length=32)  # the run's, as on messages
    step_id: str | None = Field(default=None, max_length=64)
    purpose: str = Field(default="marketing", max_length=16)  # marketing | transactional
    subject: str | None = None
    body: str | None = None  # the plain-text part
    html: str | None = None
    # reserved | deferred | sending | sent | skipped | failed | unconfirmed | bounced | complained
    status: str = Field(default="reserved", max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=64)
    defer_until: datetime | None = _ts()
    provider: str | None = Field(default=None, max_length=16)
    provider_message_id: str | None = Field(default=None, max_length=255)  # the Message-ID header
    error_code: str | None = Field(default=None, max_length=16)
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts(index=True)
    updated_at: datetime | None = _ts()
    anonymised_at: datetime | None = _ts()  # retention emptied subject and bodies

    __table_args__ = (
        Index("ix_email_messages_retention", "anonymised_at", "created_at", "id"),
        # reports: a journey's emails by version and step (answered from the index)
        Index("ix_email_messages_report", "journey_id", "journey_version", "step_id", "status", "reason",
              "enrollment_id"),
    )


class EmailSuppression(SQLModel, table=True):
    """An address we must not email (a hard bounce, a complaint, too many soft bounces),
    or one whose soft bounces are being counted. ``address`` is the address's keyed hash
    (core/customers/email_suppressions.py), never the address itself."""

    __tablename__ = "email_suppressions"

    address: str = Field(primary_key=True, max_length=80)  # hmac:<64 hex>
    reason: str | None = Field(default=None, max_length=32)  # hard_bounce | complaint | soft_bounces; None: counting
    soft_bounces: int = 0
    source: str = Field(max_length=64)  # the provider whose webhook said so
    suppressed_at: datetime | None = _ts()
    updated_at: datetime = _ts(nullable=False)


class Message(SQLModel, table=True):
    """An outgoing SMS, from reservation to delivery receipt. ``key`` makes it exactly-once."""

    __tablename__ = "messages"

    id: str = Field(primary_key=True, max_length=40)
    key: str = Field(unique=True, max_length=200)  # <enrollment>:<step>[.reprompt] | reply:<kind>:<...>
    customer_id: str = Field(index=True, max_length=64)
    enrollment_id: str | None = Field(default=None, index=True, max_length=40)
    journey_id: str | None = Field(default=None, max_length=64)
    # The run's version, written with the row: the journey report groups by it without a join.
    journey_version: str | None = Field(default=None, max_length=32)
    step_id: str | None = Field(default=None, max_length=64)
    purpose: str = Field(default="marketing", max_length=16)  # marketing | transactional | reply
    counts_toward_caps: bool = True
    expects_reply: bool = False
    body: str | None = None
    # The number a keyword or consent reply goes to (it may belong to no customer);
    # journey texts go to the customer's phone and leave it empty.
    reply_to: str | None = Field(default=None, max_length=32)
    encoding: str | None = Field(default=None, max_length=8)
    segments: int | None = None
    # reserved | deferred | sending | sent | delivered | undelivered | failed | skipped | unconfirmed
    status: str = Field(default="reserved", max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=64)
    defer_until: datetime | None = _ts()
    # Whose clock quiet hours followed (marketing texts): the zone(s), comma-joined, and how
    # they were chosen: customer_timezone | number | default_timezone.
    send_zone: str | None = None  # unbounded: all of +1 is 42 zones
    send_rule: str | None = Field(default=None, max_length=32)
    send_region: str | None = Field(default=None, max_length=64)  # region rules applied: "US,US-FL"
    provider: str | None = Field(default=None, max_length=16)
    provider_message_id: str | None = Field(default=None, max_length=64, index=True)
    error_code: str | None = Field(default=None, max_length=16)
    provider_status: str | None = Field(default=None, max_length=16)  # the provider's own last word
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts(index=True)
    updated_at: datetime | None = _ts()
    replied_at: datetime | None = _ts()
    # Set when retention emptied ``body`` and ``reply_to`` (core/retention.py): the row stays for the reports.
    anonymised_at: datetime | None = _ts()

    __table_args__ = (
        Index("ix_messages_retention", "anonymised_at", "created_at", "id"),
        # Reports (answered from the index): a journey's texts by run, and a reply or STOP
        # attributed to the customer's last journey text before it.
        Index("ix_messages_report", "journey_id", "journey_version", "step_id", "status", "reason",
              "counts_toward_caps", "segments", "enrollment_id"),
        Index("ix_messages_attribution", "customer_id", "sent_at", "status", "enrollment_id", "journey_id", "step_id",
              "journey_version"),
    )


class Link(SQLModel, table=True):
    __tablename__ = "links"

    code: str = Field(primary_key=True, max_length=16)
    message_key: str = Field(max_length=200)
    url: str
    customer_id: str = Field(index=True, max_length=64)
    enrollment_id: str | None = Field(default=None, max_length=40)
    journey_id: str | None = Field(default=None, max_length=64)
    journey_version: str | None = Field(default=None, max_length=32)  # the run's, as on messages
    step_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts(nullable=False)
    # Set when retention cut ``url`` down to its origin (core/retention.py): the link answers 410 Gone.
    anonymised_at: datetime | None = _ts()

    __table_args__ = (
        UniqueConstraint("message_key", "url", name="uq_link_per_message"),
        Index("ix_links_retention", "anonymised_at", "created_at", "code"),
        Index("ix_links_enrollment", "enrollment_id"),  # reports: clicks per run
        Index("ix_links_report", "journey_id", "code", "enrollment_id", "step_id", "journey_version"),  # reports
    )


class Click(SQLModel, table=True):
    """Every request for a tracked link. Only the first one that is a click (not a
    preview bot) becomes the link's `link_clicked` event: later ones are counted here."""

    __tablename__ = "clicks"

    id: int | None = Field(default=None, primary_key=True)
    link_code: str = Field(foreign_key="links.code", index=True, max_length=16)
    event_id: str | None = Field(default=None, max_length=128)  # click:<code>; None for a bot
    bot: str | None = Field(default=None, max_length=32)  # why it is not a click: head | no_user_agent | <bot>
    clicked_at: datetime = _ts(nullable=False)
    # The link's run, journey, version and step, copied when the click is recorded: the
    # journey report counts a step's clicks from this table alone.
    enrollment_id: str | None = Field(default=None, max_length=40)
    journey_id: str | None = Field(default=None, max_length=64)
    journey_version: str | None = Field(default=None, max_length=32)
    step_id: str | None = Field(default=None, max_length=64)

    __table_args__ = (
        Index("ix_clicks_report", "journey_id", "journey_version", "step_id", "bot", "enrollment_id"),  # reports
    )


class PointsEntry(SQLModel, table=True):
    """Append-only points ledger; ``key`` makes every award idempotent."""

    __tablename__ = "points_ledger"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    customer_id: str = Field(index=True, max_length=64)
    points: int
    reason: str
    occurred_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts()
    source: str = Field(default="journey", max_length=64)

    __table_args__ = (Index("ix_points_ledger_occurred", "occurred_at"),)  # reports: points per period


class SegmentMembership(SQLModel, table=True):
    __tablename__ = "segment_memberships"

    customer_id: str = Field(primary_key=True, max_length=64)
    segment: str = Field(primary_key=True, max_length=64, index=True)
    entered_at: datetime = _ts(nullable=False)


class SegmentRefresh(SQLModel, table=True):
    __tablename__ = "segment_refreshes"

    segment: str = Field(primary_key=True, max_length=64)
    size: int = 0
    refreshed_at: datetime | None = _ts()


class Coupon(SQLModel, table=True):
    __tablename__ = "coupons"

    code: str = Field(primary_key=True, max_length=32)
    series: str = Field(index=True, max_length=32)
    key: str = Field(unique=True, max_length=200)  # one code per (message, series)
    customer_id: str = Field(index=True, max_length=64)
    issued_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts()
    redeemed_at: datetime | None = _ts()
    redeemed_event_id: str | None = Field(default=None, max_length=128)
    # The shop's order it was redeemed for (POST /coupons/{code}/redeem, or a purchase
    # event's order_id): a repeat for the same order is the same redemption.
    redeemed_order_id: str | None = Field(default=None, max_length=128)
    # The journey text (or email) that issued it, as on its messages row: the journey report
    # counts a step's coupons from this table alone. None for rewards and other origins.
    enrollment_id: str | None = Field(default=None, max_length=40)
    journey_id: str | None = Field(default=None, max_length=64)
    journey_version: str | None = Field(default=None, max_length=32)
    step_id: str | None = Field(default=None, max_length=64)

    __table_args__ = (  # reports: a journey's coupons by version and step (answered from the index)
        Index("ix_coupons_report", "journey_id", "journey_version", "step_id", "enrollment_id", "redeemed_at"),
    )


class PooledCoupon(SQLModel, table=True):
    """A code imported for a ``pool: true`` series (`journeys coupons import`), not issued
    yet: issuing moves it to ``coupons``. No customer here."""

    __tablename__ = "coupon_pool"

    code: str = Field(primary_key=True, max_length=32)
    series: str = Field(index=True, max_length=32)
    imported_at: datetime = _ts(nullable=False)


class AttributeChange(SQLModel, table=True):
    """`set` steps, keyed so a retried step writes once."""

    __tablename__ = "attribute_changes"

    key: str = Field(primary_key=True, max_length=200)
    customer_id: str = Field(index=True, max_length=64)
    values: dict = _json(dict)
    changed_at: datetime = _ts(nullable=False)


class PhoneSuppression(SQLModel, table=True):
    """A number we must not text, whoever it belongs to: an opt-out from a number we do
    not know, a carrier-level opt-out, a number that cannot receive SMS. It is also what
    remains of a customer after erasure (GDPR): the minimal record that keeps them safe,
    and then ``phone`` holds no number but its keyed hash, ``hmac:<hex>``
    (core/customers/pseudonyms.py)."""

    __tablename__ = "phone_suppressions"

    phone: str = Field(primary_key=True, max_length=80)  # E.164, or hmac:<64 hex> for an erased number
    reason: str = Field(max_length=32)  # opted_out | unusable
    source: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False)


class InboundMessage(SQLModel, table=True):
    """Each inbound SMS by its provider id (Twilio's MessageSid): acted on once, however
    often it is delivered. ``received_at`` is its first delivery: the moment that orders
    it against other messages (Twilio sends no timestamp)."""

    __tablename__ = "inbound_messages"

    sid: str = Field(primary_key=True, max_length=64)
    received_at: datetime = _ts(nullable=False)
    claimed_at: datetime | None = _ts()  # the delivery handling it now took it then (None: free)
    handled_at: datetime | None = _ts()  # set once a delivery finished handling it


class Decision(SQLModel, table=True):
    """The first answer to a decision a run made (a condition, a match, a local time).

    Local activities are recorded in workflow history only when the workflow task
    completes; a task that fails or is rejected is replayed and its local activities
    run again. Remembering each decision by (run, step) makes the replay take the same
    branch as the first time, so effects and timeline always agree.
    """

    __tablename__ = "decisions"

    key: str = Field(primary_key=True, max_length=240)
    value: dict = _json(dict)
    decided_at: datetime = _ts(nullable=False, index=True)


class Erasure(SQLModel, table=True):
    """The audit record of one erasure request (GDPR art. 17): who asked, when it was done
    and how many rows of each table it covered. It holds no personal data: the customer
    id is the shop's pseudonymous reference, the counts are numbers."""

    __tablename__ = "erasures"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=64)
    source: str = Field(max_length=16)  # cli | api
    requested_at: datetime = _ts(nullable=False)
    completed_at: datetime | None = _ts()  # set once every run of the customer is stopped too
    counts: dict = _json(dict)  # table -> rows erased or made anonymous (and runs_stopped)


class PseudonymKey(SQLModel, table=True):
    """The key of the numbers' keyed hashes when JOURNEYS_PSEUDONYM_KEY is not set:
    generated once, on first need (see docs/operations.md, Erasure, for the trade-off)."""

    __tablename__ = "pseudonym_keys"

    id: str = Field(primary_key=True, max_length=16)  # "default"
    key: str = Field(max_length=128)  # hex
    created_at: datetime = _ts(nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """A platform's webhook delivery handled once (X-Shopify-Webhook-Id,
    X-WC-Webhook-Delivery-ID): a redelivery of it changes nothing."""

    __tablename__ = "webhook_deliveries"

    source: str = Field(primary_key=True, max_length=16)
    delivery_id: str = Field(primary_key=True, max_length=80)
    topic: str = Field(max_length=64)
    received_at: datetime = _ts(nullable=False, index=True)


class ShopDiscount(SQLModel, table=True):
    """The reservation of an issued coupon's code in the shop's platform (core/loyalty/shop_codes.py):
    ``pending`` until the platform has it (``created``), ``failed`` after a refusal. The
    customer is the coupon's (coupons.code): none is kept here."""

    __tablename__ = "shop_discounts"

    code: str = Field(primary_key=True, max_length=32)
    series: str = Field(max_length=32)
    platform: str = Field(max_length=16)  # shopify | woocommerce
    state: str = Field(default="pending", max_length=16, index=True)  # pending | created | failed
    attempts: int = 0
    platform_id: str | None = Field(default=None, max_length=80)  # the platform's id for it
    error: str | None = Field(default=None, max_length=200)  # the last failure, no customer data
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime | None = _ts()


class ImportCursor(SQLModel, table=True):
    """Where a resumable import (``journeys import shopify``) got to: the next page's cursor."""

    __tablename__ = "import_cursors"

    name: str = Field(primary_key=True, max_length=64)  # e.g. shopify:customers
    cursor: str | None = Field(default=None, max_length=2048)  # None: done
    done: int = 0  # how many were imported so far
    updated_at: datetime | None = _ts()


class JourneyControl(SQLModel, table=True):
    """An operator's control of a journey (all its versions: ``version`` is ``*``, or one
    content hash): paused, draining or stopped. No row, or ``active``: it runs as usual.
    Read at every admission and every send, so a control outlives any process."""

    __tablename__ = "journey_controls"

    journey_id: str = Field(primary_key=True, max_length=64)
    version: str = Field(primary_key=True, max_length=64)  # a content hash, or "*": every version
    state: str = Field(max_length=16)  # active | paused | draining | stopped
    changed_by: str = Field(max_length=64)  # cli | api, or the operator the request names
    changed_at: datetime = _ts(nullable=False)
    note: str | None = Field(default=None, max_length=500)
