"""The core behind the command line's runtime commands (`event`, `enroll`, `customer`,
`inbound`) and `starter.py`: wire the configured database, Temporal and SMS sender,
then take the same paths as the HTTP API."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.customers import utcnow
from engine.events import EventIn, EventRouter, RouteResult
from engine.inbound import Inbound, InboundResult
from engine.profiles import ProfileChange, give_consent, upsert_customer
from engine.replies import ReplySender
from engine.temporal import connect
from language.catalog import load_catalog
from messaging.senders import sender_from_env
from store.db import make_engine
from store.migrate import upgrade


@dataclass
class Wiring:
    router: EventRouter
    replies: ReplySender


async def wire(journeys_dir: Path | None = None, address: str | None = None) -> Wiring:
    catalog = load_catalog(journeys_dir or Path(os.environ.get("JOURNEYS_DIR", "journeys")))
    engine = make_engine()
    upgrade(engine)
    router = EventRouter(catalog, engine, await connect(address))
    return Wiring(router, ReplySender(engine, sender_from_env(catalog.settings), catalog.settings))


async def send_event(event_type: str, customer_id: str, properties: dict[str, Any], *, event_id: str | None = None,
                     occurred_at: datetime | None = None, journeys_dir: Path | None = None) -> RouteResult:
    """Raises pydantic.ValidationError for a bad type or customer id."""
    event = EventIn(id=event_id or f"cli:{uuid.uuid4().hex}", type=event_type, customer_id=customer_id,
                    occurred_at=occurred_at or utcnow(), properties=properties)
    return await (await wire(journeys_dir)).router.route(event, source="cli")


async def enroll(journey_id: str, customer_id: str, *, journeys_dir: Path | None = None) -> bool:
    """Raises KeyError for an unknown journey, ValueError for a bad customer id."""
    router = (await wire(journeys_dir)).router
    return await router.starter.start(router.catalog.journey(journey_id), customer_id,
                                      occasion=f"manual:{uuid.uuid4().hex}", check_trigger=False)


async def set_customer(customer_id: str, change: ProfileChange, *, journeys_dir: Path | None = None) -> str | None:
    """Save the profile, then consent through the same flow as the API (double opt-in
    when settings say so). Returns the customer's consent status if it was given."""
    wiring = await wire(journeys_dir)
    consent, change.consent = change.consent, None
    await upsert_customer(wiring.router, customer_id, change)
    if consent is None:
        return None
    return await give_consent(wiring.router, wiring.replies, customer_id, consent, source=change.consent_source,
                              disclosure=change.consent_text)


async def receive_sms(phone: str, body: str, *, journeys_dir: Path | None = None) -> InboundResult:
    """An inbound SMS as if it came through Twilio's webhook (for local runs)."""
    from messaging.phone import to_e164

    wiring = await wire(journeys_dir)
    e164 = to_e164(phone, wiring.router.catalog.settings.default_country)
    return await Inbound(wiring.router, wiring.replies).handle(body, at=utcnow(), message_sid=f"cli-{uuid.uuid4().hex}",
                                                               phone=e164)
