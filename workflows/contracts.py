"""Inputs and outputs of the journey activities: one small model per activity, so
fields can be added later without breaking running workflows.

Workflow code imports this module inside the sandbox, so it imports nothing but
pydantic and the language models. No phone numbers, names or message bodies travel
through these models: workflow history stays free of personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from language.models import EmailMessage, Expect, Message

SMS_TASK_QUEUE = "journeys-sms"
JOURNEY_TASK_QUEUE = "journeys"
# Deferral reasons of a send held by an operator's control (core/journeys/controls.py):
# the run waits for the next control signal, or the re-check time, whichever comes first.
HELD_REASONS = ("journey_paused", "journey_stopped")


class RunRef(BaseModel):
    """Which run an activity works for; every side-effect key is derived from it."""

    enrollment_id: str
    customer_id: str
    journey_id: str
    journey_version: str
    trigger_event_id: str | None = None
    simulated: bool = False


class Facts(BaseModel):
    """What the run knows about itself, for clicked()/sent()/answer()/variant()."""

    entered_at: datetime
    sent: list[str] = Field(default_factory=list)
    clicked: list[str] = Field(default_factory=list)
    replied: list[str] = Field(default_factory=list)
    answers: dict[str, Any] = Field(default_factory=dict)  # numbers and choices
    # Free-text answers stay in the database (they may hold anything a customer
    # typed): the run keeps the id of the reply event, and answer() reads it there.
    text_answers: dict[str, str] = Field(default_factory=dict)
    variants: dict[str, str] = Field(default_factory=dict)
    rewards: dict[str, str] = Field(default_factory=dict)  # redeem_reward step -> the coupon code


class StepCall(BaseModel):
    """The common part of every step activity's input."""

    run: RunRef
    at: datetime  # the journey's clock: decisions use it, so simulations are exact
    step_key: str  # the step id, or its path in the journey when it has none
    facts: Facts


class EvaluateInput(StepCall):
    expression: str


class NextLocalTimeInput(StepCall):
    time_of_day: str


class InspectEventInput(StepCall):
    event_id: str
    where: str | None = None
    expect: Expect | None = None  # for replies to an ask


class EventMatch(BaseModel):
    matched: bool
    step: str | None = None  # link_clicked: the step whose link was clicked
    reply_to: str | None = None  # sms_replied: the ask step it answers
    answer: Any = None  # a valid answer, parsed (None for free text: see answer_event_id)
    answer_event_id: str | None = None  # a valid free-text answer: the reply event holding it
    valid_answer: bool = False


class SendInput(StepCall):
    message: Message
    purpose: Literal["marketing", "transactional"]
    on_capped: Literal["defer", "skip"] = "defer"
    reprompt: bool = False  # answers the customer: exempt from caps
    expects_reply: bool = False


class SendEmailInput(StepCall):
    message: EmailMessage
    purpose: Literal["marketing", "transactional"]
    on_capped: Literal["defer", "skip"] = "defer"


class SendOutcome(BaseModel):
    """``unconfirmed``: the provider may or may not have the message; settle it (ask the
    provider) at ``settle_at``. ``absent``: settled, the provider never got it; send again."""

    status: Literal["sent", "skipped", "deferred", "unconfirmed", "absent"]
    reason: str | None = None
    defer_until: datetime | None = None
    settle_at: datetime | None = None
    message_id: str | None = None
    encoding: str | None = None
    segments: int | None = None
    send_zone: str | None = None  # whose clock quiet hours followed, and why (marketing texts)
    send_rule: str | None = None
    send_region: str | None = None  # the region rules that applied too, e.g. "US,US-FL"


class SettleInput(StepCall):
    message_id: str


class AwardPointsInput(StepCall):
    points: int
    reason: str
    expires_in_seconds: float | None = None


class AwardPointsOutcome(BaseModel):
    points: int
    balance: int


class RedeemRewardInput(StepCall):
    reward: str


class RedeemRewardOutcome(BaseModel):
    code: str | None  # None: refused
    reason: str | None = None  # why: not_enough_points | coupon_pool_empty | unknown_reward
    points: int = 0  # spent
    balance: int = 0


class UpdateSegmentsInput(StepCall):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class SegmentsOutcome(BaseModel):
    added: list[str]
    removed: list[str]


class SetAttributesInput(StepCall):
    values: dict[str, str]


class SetAttributesOutcome(BaseModel):
    keys: list[str]
    failed: str | None = None  # why nothing was written (render_error, too_long)


class UnsubscribeInput(StepCall):
    reason: str


class EmitInput(StepCall):
    event: str
    properties: dict[str, str] = Field(default_factory=dict)


class EmitOutcome(BaseModel):
    event_id: str | None
    failed: str | None = None  # why nothing was emitted (render_error, too_long)


class ProgressInput(BaseModel):
    run: RunRef
    step: str | None
    variants: dict[str, str] = Field(default_factory=dict)


class FinishInput(BaseModel):
    run: RunRef
    at: datetime
    outcome: str
    variants: dict[str, str] = Field(default_factory=dict)
