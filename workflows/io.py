"""What goes into and comes out of a journey workflow, and the names it is known by."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from language.catalog import PinnedJourney

WORKFLOW_NAME = "Journey"
EVENT_SIGNAL = "event"
STATUS_QUERY = "status"
CONTROL_SIGNAL = "control"

# Custom search attributes, registered with the server by `journeys dev` and the tests.
# Values are ids only: never a phone number or a name.
SEARCH_ATTRIBUTES = {
    "JourneyId": "Keyword",
    "JourneyVersion": "Keyword",
    "CustomerId": "Keyword",
    "JourneyStep": "Keyword",
    "JourneyOutcome": "Keyword",
    "JourneyControl": "Keyword",
}


JOURNEY_ID = SearchAttributeKey.for_keyword("JourneyId")
JOURNEY_VERSION = SearchAttributeKey.for_keyword("JourneyVersion")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")


def start_attributes(journey_id: str, version: str, customer_id: str) -> TypedSearchAttributes:
    """The search attributes a journey run starts with (ids only)."""
    return TypedSearchAttributes([
        SearchAttributePair(JOURNEY_ID, journey_id),
        SearchAttributePair(JOURNEY_VERSION, version),
        SearchAttributePair(CUSTOMER_ID, customer_id),
    ])


def workflow_id(journey_id: str, customer_id: str, run_key_hash: str | None = None) -> str:
    """``journey/<journey>/<customer>``, and ``/<key hash>`` for a keyed run (run_key)."""
    base = f"journey/{journey_id}/{customer_id}"
    return f"{base}/{run_key_hash}" if run_key_hash else base


def run_key_hash(journey_id: str, key: str) -> str:
    """A run key as it appears in ids and the database: the first 16 hex digits of
    sha256(journey id, NUL, key). The key (a cart id, say) is the shop's value, never
    shown; 64 bits keep two keys of one customer in one journey apart."""
    return hashlib.sha256(f"{journey_id}\0{key}".encode()).hexdigest()[:16]


class JourneyInput(BaseModel):
    enrollment_id: str
    customer_id: str
    pinned: PinnedJourney
    trigger_event_id: str | None = None
    # Simulations start at a chosen instant on the time-skipping server: the journey's
    # clock is the workflow clock shifted by this offset (0 in production).
    clock_offset_seconds: float = 0.0
    simulated: bool = False


class EventSignal(BaseModel):
    """A small reference to a stored event; the workflow fetches details only if it cares."""

    event_id: str
    type: str


class ControlSignal(BaseModel):
    """An operator's control of the run's journey (core/journeys/controls.py): the state
    now in force for its version, ``active`` | ``paused`` | ``draining`` | ``stopped``."""

    state: str


class TimelineEntry(BaseModel):
    at: datetime
    step: str
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class JourneyResult(BaseModel):
    outcome: str
    started_at: datetime
    ended_at: datetime
    timeline: list[TimelineEntry]
    variants: dict[str, str] = Field(default_factory=dict)


class JourneyStatus(BaseModel):
    step: str | None
    waiting_for: str | None
    outcome: str | None
    variants: dict[str, str]
    sent: list[str]
    clicked: list[str]
    answers: dict[str, Any]
