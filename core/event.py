"""An event as the core sees it, and the one path that takes it (as a Protocol).

A leaf: every part of the core that makes events imports this, never the router
itself; the router (core.events.router) is handed in, so nothing below it needs to
know how events are stored and routed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator

from core.validation import (
    EVENT_ID_PATTERN,
    CustomerId,
    EventId,
    no_nul,
    purchase_amount,
    purchase_items,
    require_timezone,
)
from language.catalog import Catalog
from store.db import Database


class EventIn(BaseModel):
    """An event as a shop service sends it."""

    id: Annotated[str, AfterValidator(no_nul)] = Field(min_length=1, max_length=128,
                                                       description="Unique per event; repeats are ignored")
    type: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    customer_id: CustomerId
    occurred_at: Annotated[datetime | None, AfterValidator(require_timezone)] = None
    properties: Annotated[dict[str, Any], AfterValidator(no_nul)] = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def _purchase_amount(cls, properties: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The loyalty program computes with it: refuse what it cannot (inf, nan, absurd).
        # Line items feed customer.bought() and customer.categories: refuse what they cannot store.
        if info.data.get("type") == "purchase" and properties.get("amount") is not None:
            purchase_amount(properties["amount"])
        if info.data.get("type") == "purchase" and properties.get("items") is not None:
            purchase_items(properties["items"])
        return properties


class ExternalEventIn(EventIn):
    """An event as a shop service sends it over the API: its id is checked to be an
    opaque reference (core.validation.opaque_event_id). Ids the engine builds itself
    (``consent:<customer>:<status>:<time>``, ``inbound:<MessageSid>``...) come from checked
    parts and are not held to it; follow_up_id keeps a valid id valid."""

    # The pattern is in the schema; the validator says what is wrong in words.
    id: EventId = Field(min_length=1, max_length=128, json_schema_extra={"pattern": EVENT_ID_PATTERN},
                        description="Unique per event; repeats are ignored. An opaque reference (letters, digits "
                                    "and _ . : -), never an email or a phone number")


@dataclass
class RouteResult:
    event_id: str
    duplicate: bool = False
    signalled: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # journey it triggered -> why not entered
    follow_ups: list[str] = field(default_factory=list)



class EventPath(Protocol):
    """What a use case needs of the event path: the catalog and database it routes
    for, and ``route`` (see core.events.router.EventRouter)."""

    catalog: Catalog
    db: Database

    async def route(self, event: EventIn, *, source: str = "api", origin: str | None = None) -> RouteResult: ...


def follow_up_id(base: str, suffix: str) -> str:
    """``<base>:<suffix>`` as a follow-up event's id, shortened (hashed) if it would pass
    the 128 characters an event id may have."""
    candidate = f"{base}:{suffix}"
    if len(candidate) <= 128:
        return candidate
    return f"{hashlib.sha256(base.encode()).hexdigest()[:40]}:{suffix}"[:128]
