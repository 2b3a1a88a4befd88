"""Scenario files: a customer, a start, events, and what a journey must do with them.

They live next to the journeys, in ``scenarios/<journey>/<name>.yaml``, and `journeys test`
runs them (processes/scenario_run.py). The format is in docs/authoring.md "Scenarios".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from language.loader import load_file
from language.problems import Problem
from processes.simulate import CustomerSpec, ScheduledEvent, parse_offset

SCENARIOS_DIR = "scenarios"
_OFFSET = re.compile(r"^\+(?:\d+[smhdw])+$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioEvent(_Strict):
    """One thing the customer does: an event (``type``), a link click, a reply or STOP."""

    at: str = Field(description="+2d (after the start, compound like +2d3h) or an ISO instant")
    type: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    click: str | None = Field(default=None, description="the step whose link the customer clicks")
    reply: str | None = Field(default=None, description="the ask step the customer answers (text: the reply)")
    text: str | None = None
    stop: bool = False

    @field_validator("at")
    @classmethod
    def _moment(cls, value: str) -> str:
        if not _OFFSET.match(value):
            try:
                _instant(value)
            except ValueError as err:
                raise ValueError(f"write +OFFSET after the start (+2d, +1d3h) or an ISO instant: {err}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScenarioEvent:
        kinds = [name for name, given in (("type", self.type), ("click", self.click), ("reply", self.reply),
                                          ("stop", self.stop)) if given]
        if len(kinds) != 1:
            raise ValueError("give exactly one of type, click, reply or stop: true")
        if self.reply and self.text is None:
            raise ValueError("a reply needs its text, e.g. text: '5'")
        return self


class ExpectedText(_Strict):
    step: str
    at: str | None = Field(default=None, description="ISO instant, or local time in the customer's zone")
    text: str | None = Field(default=None, description="the whole text (links as <link URL>, codes as "
                                                       "<coupon SERIES>)")
    contains: str | list[str] | None = None

    @field_validator("at")
    @classmethod
    def _moment(cls, value: str | None) -> str | None:
        if value is not None and not _LOCAL.match(value):
            _instant(value)
        return value


class ExpectedEmail(_Strict):
    step: str
    at: str | None = Field(default=None, description="ISO instant, or local time in the customer's zone")
    subject: str | None = Field(default=None, description="the whole subject line")
    contains: str | list[str] | None = Field(default=None, description="found in the subject or the plain-text "
                                                                       "part (links as <link URL>)")

    @field_validator("at")
    @classmethod
    def _moment(cls, value: str | None) -> str | None:
        if value is not None and not _LOCAL.match(value):
            _instant(value)
        return value


class Expect(_Strict):
    outcome: str | None = Field(default=None, description="completed, an exit name, not_entered, ...")
    texts: list[ExpectedText] | None = Field(default=None, description="every text sent, in order")
    emails: list[ExpectedEmail] | None = Field(default=None, description="every email sent, in order")
    not_entered_reason: str | None = None


class Trigger(_Strict):
    type: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Scenario(_Strict):
    description: str = ""
    customer: dict[str, Any] = Field(default_factory=dict)
    start: str = Field(description="ISO instant with a zone: fixed, so no scenario depends on today")
    trigger: Trigger | None = None
    events: list[ScenarioEvent] = Field(default_factory=list)
    expect: Expect

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        _instant(value)
        return value

    @field_validator("customer")
    @classmethod
    def _customer(cls, value: dict[str, Any]) -> dict[str, Any]:
        CustomerSpec.given(value)  # the same fields as `journeys simulate --customer`
        return value


@dataclass
class LoadedScenario:
    journey: str
    name: str
    file: Path
    scenario: Scenario

    @property
    def label(self) -> str:
        return f"{self.journey}/{self.name}"

    @property
    def customer(self) -> CustomerSpec:
        return CustomerSpec.given(self.scenario.customer)

    @property
    def start(self) -> datetime:
        return _instant(self.scenario.start)

    def zone(self, default_timezone: str) -> str:
        return self.customer.timezone or default_timezone

    def trigger_spec(self) -> str | None:
        trigger = self.scenario.trigger
        if trigger is None or trigger.type is None:
            return None
        return f"{trigger.type} {json.dumps(trigger.properties)}" if trigger.properties else trigger.type

    def schedule(self) -> list[ScheduledEvent]:
        items = [_scheduled(event, self.start) for event in self.scenario.events]
        return sorted(items, key=lambda item: item.offset)


def _scheduled(event: ScenarioEvent, start: datetime) -> ScheduledEvent:
    offset = parse_offset(event.at) if event.at.startswith("+") else _instant(event.at) - start
    if offset < timedelta(0):
        raise ScenarioError(f"event at {event.at} is before the start")
    if event.click:
        return ScheduledEvent(offset, "click", step=event.click)
    if event.reply:
        return ScheduledEvent(offset, "reply", step=event.reply, text=event.text or "")
    if event.stop:
        return ScheduledEvent(offset, "stop", text=event.text or "STOP")
    return ScheduledEvent(offset, "event", type=event.type or "", properties=event.properties)


class ScenarioError(ValueError):
    pass


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 instant, e.g. 2026-03-02T15:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no zone: write Z or an offset, e.g. 2026-03-02T15:00:00Z")
    return moment.astimezone(UTC)


def expected_instant(value: str, zone: str) -> datetime:
    """An expected ``at``: an ISO instant, or a local time (no zone) in ``zone``."""
    if _LOCAL.match(value):
        return datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return _instant(value)


def scenario_files(journeys_dir: Path, journey: str | None = None) -> list[tuple[str, Path]]:
    """(journey id, file) of every scenario, sorted; only ``journey``'s when given."""
    root = journeys_dir / SCENARIOS_DIR
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if journey is not None and folder.name != journey:
            continue
        found += [(folder.name, file) for file in sorted(folder.glob("*.yaml"))]
    return found


def load_scenario(journey: str, file: Path) -> tuple[LoadedScenario | None, list[Problem]]:
    """The scenario, or the problems with it (file:line:column, like journeys)."""
    doc = load_file(file)
    if doc.problems:
        return None, doc.problems
    if not isinstance(doc.data, dict):
        return None, [doc.problem(doc.position(()), "a scenario is a mapping: customer, start, events, expect")]
    try:
        scenario = Scenario.model_validate(doc.data)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            path = doc.resolve(tuple(error["loc"]))
            where = doc.key_position(path) if error["type"] == "extra_forbidden" else doc.position(path)
            message = error["msg"].removeprefix("Value error, ")
            name = ".".join(str(part) for part in path) or "scenario"
            problems.append(doc.problem(where, f"{name}: {message}"))
        return None, problems
    return LoadedScenario(journey, file.stem, file, scenario), []

