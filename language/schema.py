"""JSON Schemas of the journey files, for editor completion and checking as you type.

Generated from the same pydantic models the validator uses, so the schema cannot drift
from the language. Fields the loader fills in (a message's ``texts``) are not offered to
authors, and every key gets a description an editor can show on hover.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from language import config, models
from language.config import Loyalty, Segments, Settings
from language.models import Journey

Kind = Literal["journey", "settings", "segments", "loyalty"]
MODELS: dict[str, type[BaseModel]] = {
    "journey": Journey,
    "settings": Settings,
    "segments": Segments,
    "loyalty": Loyalty,
}
ROOT_DESCRIPTIONS = {
    "journey": "One journey per file (journeys/<id>.yaml): a trigger, then steps.",
    "settings": "journeys/settings.yaml: brand, sender, quiet hours, frequency caps, replies.",
    "segments": "journeys/segments.yaml: rule segments (computed) and manual segments.",
    "loyalty": "journeys/loyalty.yaml: points, tiers, punch card, referral, coupon series.",
}
TITLES = {
    "journey": "Loyalty SMS journey",
    "settings": "Journeys settings.yaml",
    "segments": "Journeys segments.yaml",
    "loyalty": "Journeys loyalty.yaml",
}
INTERNAL_FIELDS = {"texts"}  # filled by the loader from templates/, never written by hand

# (model name, key) -> hover text. Only where the models themselves say nothing.
DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("Journey", "id"): "Journey id: lowercase letters, digits and _; equals the file name.",
    ("Settings", "regions"): "Rules per country (DE) or US state (US-FL), on top of the shop's and the shipped "
                             "state rules; the stricter wins (docs/compliance.md).",
    ("RegionRule", "quiet_hours"): "The region's quiet hours, local time, e.g. {start: '20:00', end: '08:00'}.",
    ("RegionRule", "weekday_quiet_hours"): "A weekday's own quiet hours, replacing quiet_hours on that day.",
    ("RegionRule", "quiet_days"): "Whole weekdays without marketing texts, e.g. [sunday].",
    ("RegionRule", "frequency_caps"): "Caps counted with the shop's, over all marketing texts.",
    ("Journey", "name"): "A human name for reports.",
    ("Journey", "description"): "What the journey does and why.",
    ("Journey", "trigger"): "Exactly one trigger: event, segment_entered, segment_exited, date, schedule or manual.",
    ("Journey", "audience"): "Optional entry filter, e.g. customer.orders_count >= 1.",
    ("Journey", "reentry"): "never (default), always, or a duration: at most once per duration.",
    ("Journey", "exit_on"): "Events that end the journey at once, wherever the customer is.",
    ("Journey", "goal"): "The conversion event, for reports.",
    ("Journey", "sending"): "Purpose (marketing/transactional) and what to do when capped.",
    ("Journey", "steps"): "The steps, run in order. Each step has one action key.",
    ("EventTrigger", "event"): "Event type that starts the journey, e.g. purchase.",
    ("EventTrigger", "where"): "Optional condition on the event, e.g. event.properties.amount > 50.",
    ("SegmentEnteredTrigger", "segment_entered"): "Start when a customer enters this segment.",
    ("SegmentExitedTrigger", "segment_exited"): "Start when a customer leaves this segment.",
    ("DateTrigger", "date"): "Every year on a date attribute of the customer.",
    ("DateSpec", "at"): "Local time of day, HH:MM.",
    ("ScheduleTrigger", "schedule"): "A broadcast: every member of the segment enters on the cron schedule.",
    ("ScheduleSpec", "segment"): "The segment whose members enter.",
    ("ManualTrigger", "manual"): "Only through the CLI or API (enroll).",
    ("StepBase", "id"): "Step id, unique in the journey; required for send_sms, send_email and ask.",
    ("SendSmsStep", "send_sms"): "Send an SMS: text or template.",
    ("SendSmsStep", "channel"): "Text or email: sms_else_email, email_else_sms or preferred (the channel of the "
                                "customer's most recent opt-in); the other channel only when the first cannot "
                                "reach the customer. Needs an email block.",
    ("SendSmsStep", "email"): "The email for a step with channel: subject and text (and html), or a template.",
    ("SendEmailStep", "send_email"): "Send an email: subject, text and optional html (templates), or a template "
                                     "of journeys/templates/ with the three per locale.",
    ("EmailMessage", "subject"): "The subject line (one line, up to 200 characters); a template.",
    ("EmailMessage", "text"): "The plain-text part; may use {{ ... }}, link(url) and coupon('SERIES').",
    ("EmailMessage", "html"): "Optional HTML part; placeholders are HTML-escaped.",
    ("EmailMessage", "purpose"): "Override the journey's sending purpose (marketing needs email opt-in).",
    ("Message", "text"): "The message text; may use {{ ... }} placeholders, link(url) and coupon('SERIES').",
    ("Message", "template"): "Name of a template in templates/ (text per locale).",
    ("Message", "purpose"): "Override the journey's sending purpose.",
    ("Message", "media_url"): "Image URL to send as MMS.",
    ("AskStep", "ask"): "Send a question and wait for the reply; answer('<id>') holds it.",
    ("AskSpec", "expect"): "{type: integer, min, max}, {choices: [...]} or {type: text}.",
    ("AskSpec", "timeout"): "How long to wait for a valid answer.",
    ("AskSpec", "reprompt"): "Sent once on an invalid reply.",
    ("WaitStep", "wait"): "A duration (30d) or {until: 'HH:MM'} in the customer's time zone.",
    ("WaitForStep", "wait_for"): "Wait for an event, up to a timeout.",
    ("WaitForSpec", "event"): "Event type to wait for.",
    ("WaitForSpec", "where"): "Optional condition on the event.",
    ("WaitForSpec", "timeout"): "How long to wait before taking else.",
    ("IfStep", "if"): "A condition, e.g. customer.points >= 500 and not clicked('survey').",
    ("ChooseStep", "choose"): "Branches, first match wins; an else branch goes last.",
    ("ChooseWhen", "when"): "The branch's condition.",
    ("ChooseElse", "else"): "Steps when no branch matched.",
    ("SplitStep", "split"): "An A/B test: each customer gets one variant by weight.",
    ("SplitSpec", "name"): "Split name, for journey.variant('<name>') and reports.",
    ("Variant", "weight"): "Relative weight; 0 means no customer gets it.",
    ("AwardPointsStep", "award_points"): "Give loyalty points.",
    ("RedeemRewardStep", "redeem_reward"): "Spend points for a reward's coupon (loyalty.yaml rewards); "
                                           "later texts show it with reward_code('<step id>').",
    ("UpdateSegmentsStep", "update_segments"): "Add to / remove from manual segments.",
    ("SetStep", "set"): "Set customer attributes; values are templates.",
    ("UnsubscribeStep", "unsubscribe"): "Opt the customer out of SMS.",
    ("EmitStep", "emit"): "Emit an event (other journeys can trigger on it).",
    ("ExitStep", "exit"): "End the journey with this outcome.",
    ("ExitOn", "event"): "Event type that ends the journey.",
    ("Goal", "within"): "Counted when it happens this long after the last message.",
    ("Goal", "value"): "The conversion's value, e.g. event.properties.amount.",
}
STEP_LIST_KEYS = {
    "then": "Steps when the condition holds / the answer or event came.",
    "else": "Steps otherwise (condition false, timed out).",
    "steps": "The steps of this branch.",
}


def schema_for(kind: Kind = "journey") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind of journeys file."""
    schema = MODELS[kind].model_json_schema(by_alias=True)
    for name, definition in [(MODELS[kind].__name__, schema), *schema.get("$defs", {}).items()]:
        _describe(name, definition)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://loyalty-journeys.dev/schema/{kind}.json",
        **schema,
        "title": TITLES[kind],
        "description": ROOT_DESCRIPTIONS[kind],
    }
    return schema


def _lineage(model_name: str) -> list[str]:
    """The model and its bases, by name: inherited keys share their description."""
    model = getattr(models, model_name, None) or getattr(config, model_name, None)
    if not isinstance(model, type):
        return [model_name]
    return [c.__name__ for c in model.__mro__ if issubclass(c, BaseModel)]


def _describe(model_name: str, definition: dict[str, Any]) -> None:
    properties = definition.get("properties")
    if not isinstance(properties, dict):
        return
    for key in INTERNAL_FIELDS & set(properties):
        if properties[key].get("readOnly"):
            del properties[key]
    for key, prop in properties.items():
        text = next((DESCRIPTIONS[(n, key)] for n in _lineage(model_name) if (n, key) in DESCRIPTIONS), None)
        if text is None and key in STEP_LIST_KEYS and prop.get("type") == "array":
            text = STEP_LIST_KEYS[key]
        if text and "description" not in prop:
            prop["description"] = text
