"""The journey language as pydantic models: what a journey file may say.

These models are the contract between the YAML a marketer writes, the validator,
the JSON Schema editors use, and the workflow that interprets a journey. They hold
no behaviour beyond shape checks, and import nothing but pydantic, so workflow
code can use them inside Temporal's sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from language.durations import Duration, TimeOfDay

IDENTIFIER = r"^[a-z0-9_]+$"
# Ids are stored in columns of 64 characters (journeys, steps, events, segments).
Identifier = Annotated[str, Field(pattern=IDENTIFIER, max_length=64)]
Expression = Annotated[str, Field(min_length=1, description="A condition, e.g. customer.points >= 500")]
Template = Annotated[str, Field(description="Message text; may use {{ ... }} placeholders")]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    # validate_default: defaults written as text ("7d") become the typed value (timedelta).
    # Only the written spelling of a key is read (`if`, never the field name `if_`, which
    # would skip every check of `if`), and dumps use it, so a dump reads back.
    model_config = ConfigDict(
        extra="forbid", validate_by_name=False, validate_by_alias=True, serialize_by_alias=True, frozen=False,
        validate_default=True,
    )


# --- triggers --------------------------------------------------------------------


class EventTrigger(Strict):
    event: Identifier
    where: Expression | None = None


class SegmentEnteredTrigger(Strict):
    segment_entered: Identifier


class SegmentExitedTrigger(Strict):
    segment_exited: Identifier


class DateSpec(Strict):
    attribute: str = Field(description="A date attribute of the customer, e.g. birthday")
    at: TimeOfDay = "10:00"
    # Written as text so the JSON schema shows it so; validate_default parses it (a timedelta default reads PT0S).
    offset: Duration = Field(default="0d", description="Days before (negative) or after the date")  # type: ignore[assignment]


class DateTrigger(Strict):
    date: DateSpec


class ScheduleSpec(Strict):
    cron: str = Field(description="Five-field cron expression, e.g. '0 10 * * 5'")
    segment: Identifier
    timezone: str = Field(default="customer", description="'customer' or an IANA time zone")


class ScheduleTrigger(Strict):
    schedule: ScheduleSpec


class ManualTrigger(Strict):
    manual: Literal[True]


TRIGGER_KEYS = ("event", "segment_entered", "segment_exited", "date", "schedule", "manual")


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        for key in TRIGGER_KEYS:
            if key in value:
                return key
    return None


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[SegmentEnteredTrigger, Tag("segment_entered")]
    | Annotated[SegmentExitedTrigger, Tag("segment_exited")]
    | Annotated[DateTrigger, Tag("date")]
    | Annotated[ScheduleTrigger, Tag("schedule")]
    | Annotated[ManualTrigger, Tag("manual")],
    Discriminator(_trigger_kind),
]


# --- steps -----------------------------------------------------------------------


class Message(Strict):
    """The text of an SMS: inline ``text`` or a named ``template``."""

    text: Template | None = None
    template: Identifier | None = None
    purpose: Literal["marketing", "transactional"] | None = None
    media_url: str | None = None
    # Filled by the loader from journeys/templates/: locale -> text. Pinned with the
    # journey version, so a template edit never changes a customer in flight.
    texts: dict[str, str] | None = Field(default=None, exclude=False, json_schema_extra={"readOnly": True})

    @model_validator(mode="after")
    def _one_source(self) -> Message:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of 'text' or 'template'")
        return self


class Expect(Strict):
    type: Literal["integer", "text", "choice"] | None = None
    min: int | None = None
    max: int | None = None
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        if self.choices is not None:
            if self.type not in (None, "choice"):
                raise ValueError("'choices' goes with no type (or type: choice)")
            if not self.choices:
                raise ValueError("'choices' needs at least one choice")
            self.type = "choice"
        elif self.type is None:
            raise ValueError("give a 'type' (integer or text) or a list of 'choices'")
        elif self.type == "choice":
            raise ValueError("type: choice needs a list of 'choices'")
        if self.type != "integer" and (self.min is not None or self.max is not None):
            raise ValueError("'min' and 'max' go with type: integer")
        return self


class AskSpec(Message):
    expect: Expect
    timeout: Duration
    reprompt: Template | None = None


class StepBase(Strict):
    id: Identifier | None = None


SUBJECT_MAX = 200  # characters, before placeholders are filled in
HTML_MAX = 100_000  # characters of an email's HTML part


def subject_problem(subject: str) -> str | None:
    """Why a subject line is not one: empty, several lines, too long."""
    if not subject.strip():
        return "the subject must not be empty"
    if "\n" in subject or "\r" in subject:
        return "the subject must be one line"
    if len(subject) > SUBJECT_MAX:
        return f"the subject is longer than {SUBJECT_MAX} characters"
    return None


class EmailMessage(Strict):
    """An email: a subject, a plain-text part and an optional HTML part, each a template;
    or a named ``template`` with the three per locale."""

    subject: Template | None = None
    text: Template | None = None
    html: Template | None = None
    template: Identifier | None = None
    purpose: Literal["marketing", "transactional"] | None = None
    # Filled by the loader from journeys/templates/: locale -> part, pinned with the journey version.
    subjects: dict[str, str] | None = Field(default=None, json_schema_extra={"readOnly": True})
    texts: dict[str, str] | None = Field(default=None, json_schema_extra={"readOnly": True})
    htmls: dict[str, str] | None = Field(default=None, json_schema_extra={"readOnly": True})

    @model_validator(mode="after")
    def _bounded(self) -> EmailMessage:
        if self.template is not None:
            if self.subject is not None or self.text is not None or self.html is not None:
                raise ValueError("give either 'template' or 'subject' and 'text' (the template has them)")
            return self
        if self.subject is None or self.text is None:
            raise ValueError("give 'subject' and 'text' (and optionally 'html'), or a 'template'")
        if reason := subject_problem(self.subject):
            raise ValueError(reason.replace("the subject", "'subject'"))
        if self.html is not None and len(self.html) > HTML_MAX:
            raise ValueError(f"'html' is longer than {HTML_MAX:,} characters")
        return self


class SendEmailStep(StepBase):
    send_email: EmailMessage


Channel = Literal["sms_else_email", "email_else_sms", "preferred"]


class SendSmsStep(StepBase):
    """A text; with ``channel`` and an ``email`` block, a text or an email: the first channel,
    and the other only when the first cannot reach the customer (workflows/steps/channels.py)."""

    send_sms: Message
    channel: Channel | None = None
    email: EmailMessage | None = None  # after channel, so its check sees channel

    @field_validator("email")
    @classmethod
    def _both_channels(cls, email: EmailMessage | None, info: ValidationInfo) -> EmailMessage | None:
        # On the field (validate_default: it runs when absent too), so an error points at the
        # email block or the step; a channel that failed its own check is not in info.data.
        if "channel" not in info.data:
            return email
        channel = info.data["channel"]
        if channel is not None and email is None:
            raise ValueError(f"channel: {channel} needs an 'email' block (subject and text, or a template)")
        if channel is None and email is not None:
            raise ValueError("an 'email' block goes with 'channel' (sms_else_email, email_else_sms or preferred)")
        return email


class AskStep(StepBase):
    ask: AskSpec
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class WaitUntil(Strict):
    until: TimeOfDay


class WaitStep(StepBase):
    wait: Duration | WaitUntil


class WaitForSpec(Strict):
    event: Identifier
    where: Expression | None = None
    timeout: Duration


class WaitForStep(StepBase):
    wait_for: WaitForSpec
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class IfStep(StepBase):
    if_: Expression = Field(alias="if")
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class ChooseWhen(Strict):
    when: Expression
    steps: list[Step] = Field(default_factory=list)


class ChooseElse(Strict):
    else_: list[Step] = Field(alias="else")


def _choice_kind(value: Any) -> str | None:
    if isinstance(value, ChooseWhen):
        return "when"
    if isinstance(value, ChooseElse):
        return "else"
    if isinstance(value, dict):
        if "when" in value:
            return "when"
        if "else" in value:
            return "else"
    return None


ChooseBranch = Annotated[
    Annotated[ChooseWhen, Tag("when")] | Annotated[ChooseElse, Tag("else")],
    Discriminator(_choice_kind),
]


class ChooseStep(StepBase):
    choose: list[ChooseBranch] = Field(min_length=1)


class Variant(Strict):
    name: Identifier
    weight: int = Field(ge=0)
    steps: list[Step] = Field(default_factory=list)


class SplitSpec(Strict):
    name: Identifier
    variants: list[Variant] = Field(min_length=2)


class SplitStep(StepBase):
    split: SplitSpec


# Points are stored as 32-bit integers (PostgreSQL): one award stays far inside that.
MAX_POINTS = 1_000_000


class AwardPointsSpec(Strict):
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS)
    reason: str
    expires_in: Duration | None = None


class AwardPointsStep(StepBase):
    award_points: AwardPointsSpec


class RedeemRewardSpec(Strict):
    reward: Identifier  # a reward of loyalty.yaml


class RedeemRewardStep(StepBase):
    """Spend the customer's points for a reward's coupon (core/loyalty/rewards.py); a
    refusal (not enough points, an empty pool) is recorded and the run goes on. Later
    steps read the code with reward_code('<this step's id>')."""

    redeem_reward: RedeemRewardSpec


class UpdateSegmentsSpec(Strict):
    add: list[Identifier] = Field(default_factory=list)
    remove: list[Identifier] = Field(default_factory=list)


class UpdateSegmentsStep(StepBase):
    update_segments: UpdateSegmentsSpec


class SetStep(StepBase):
    set: dict[Identifier, Template] = Field(min_length=1)


class UnsubscribeSpec(Strict):
    reason: str = "journey"


class UnsubscribeStep(StepBase):
    unsubscribe: UnsubscribeSpec


class EmitSpec(Strict):
    event: Identifier
    properties: dict[str, Template] = Field(default_factory=dict)


class EmitStep(StepBase):
    emit: EmitSpec


class ExitStep(StepBase):
    exit: Identifier


STEP_TYPES: dict[str, type[StepBase]] = {
    "send_sms": SendSmsStep,
    "send_email": SendEmailStep,
    "ask": AskStep,
    "wait": WaitStep,
    "wait_for": WaitForStep,
    "if": IfStep,
    "choose": ChooseStep,
    "split": SplitStep,
    "award_points": AwardPointsStep,
    "redeem_reward": RedeemRewardStep,
    "update_segments": UpdateSegmentsStep,
    "set": SetStep,
    "unsubscribe": UnsubscribeStep,
    "emit": EmitStep,
    "exit": ExitStep,
}
SENDING_STEP_TYPES = ("send_sms", "ask", "send_email")


def step_kind(value: Any) -> str | None:
    """The action key of a step (``send_sms``, ``if``, ...), or None if it has none."""
    if isinstance(value, StepBase):
        for kind, model in STEP_TYPES.items():
            if type(value) is model:
                return kind
        return None
    if isinstance(value, dict):
        for key in value:
            if key in STEP_TYPES:
                return key
    return None


Step = Annotated[
    Annotated[SendSmsStep, Tag("send_sms")]
    | Annotated[SendEmailStep, Tag("send_email")]
    | Annotated[AskStep, Tag("ask")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[ChooseStep, Tag("choose")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[AwardPointsStep, Tag("award_points")]
    | Annotated[RedeemRewardStep, Tag("redeem_reward")]
    | Annotated[UpdateSegmentsStep, Tag("update_segments")]
    | Annotated[SetStep, Tag("set")]
    | Annotated[UnsubscribeStep, Tag("unsubscribe")]
    | Annotated[EmitStep, Tag("emit")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(step_kind),
]


# --- the journey -----------------------------------------------------------------


class ExitOn(Strict):
    event: Identifier
    where: Expression | None = None


class Goal(Strict):
    event: Identifier
    # Written as text so the JSON schema shows it so; validate_default parses it (a timedelta default reads P7D).
    within: Duration = "7d"  # type: ignore[assignment]
    value: Expression | None = None


class Sending(Strict):
    purpose: Literal["marketing", "transactional"] = "marketing"
    on_capped: Literal["defer", "skip"] = "defer"


Reentry = Literal["never", "always"] | Duration
MAX_RUN_KEY_CHARS = 200  # the run_key expression's source
MAX_RUN_KEY_VALUE = 256  # the key it gives for one event (longer: not entered)


class Journey(Strict):
    id: Identifier
    name: str
    description: str | None = None
    trigger: Trigger
    audience: Expression | None = None
    reentry: Reentry = "never"
    # One run at a time per value of this expression over the trigger event (e.g. a cart
    # id) instead of per customer; only for event triggers.
    run_key: Expression | None = None
    exit_on: list[ExitOn] = Field(default_factory=list)
    goal: Goal | None = None
    sending: Sending = Field(default_factory=Sending)
    steps: list[Step] = Field(min_length=1)


for _model in (AskStep, WaitForStep, IfStep, ChooseWhen, ChooseElse, Variant, Journey):
    _model.model_rebuild()


def children(step: StepBase) -> list[tuple[str, Sequence[StepBase]]]:
    """The nested step lists of a step, each with its path label (``then``, ``else``...)."""
    if isinstance(step, AskStep | WaitForStep | IfStep):
        return [("then", step.then), ("else", step.else_)]
    if isinstance(step, ChooseStep):
        return [
            (f"choose.{i}", branch.steps if isinstance(branch, ChooseWhen) else branch.else_)
            for i, branch in enumerate(step.choose)
        ]
    if isinstance(step, SplitStep):
        return [(f"variant.{v.name}", v.steps) for v in step.split.variants]
    return []
