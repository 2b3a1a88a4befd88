"""The core behind `journeys event`, `journeys enroll` and `starter.py`: connect to the
configured database and Temporal, then take the engine's one event path."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.customers import utcnow
from engine.events import EventIn, EventRouter, RouteResult
from engine.profiles import ProfileChange, upsert_customer
from engine.temporal import connect
from language.catalog import load_catalog
from store.db import make_engine
from store.migrate import upgrade


async def _router(journeys_dir: Path | None, address: str | None) -> EventRouter:
    catalog = load_catalog(journeys_dir or Path(os.environ.get("JOURNEYS_DIR", "journeys")))
    engine = make_engine()
    upgrade(engine)
    return EventRouter(catalog, engine, await connect(address))


async def send_event(event_type: str, customer_id: str, properties: dict[str, Any], *, event_id: str | None = None,
                     occurred_at: datetime | None = None, journeys_dir: Path | None = None,
                     address: str | None = None) -> RouteResult:
    import uuid

    event = EventIn(id=event_id or f"cli:{uuid.uuid4().hex}", type=event_type, customer_id=customer_id,
                    occurred_at=occurred_at or utcnow(), properties=properties)
    router = await _router(journeys_dir, address)
    return await router.route(event, source="cli")


async def enroll(journey_id: str, customer_id: str, *, journeys_dir: Path | None = None,
                 address: str | None = None) -> bool:
    import uuid

    router = await _router(journeys_dir, address)
    pinned = router.catalog.journey(journey_id)
    return await router.starter.start(pinned, customer_id, occasion=f"manual:{uuid.uuid4().hex}",
                                      check_trigger=False)


async def set_customer(customer_id: str, change: ProfileChange, *, journeys_dir: Path | None = None,
                       address: str | None = None) -> None:
    router = await _router(journeys_dir, address)
    await upsert_customer(router, customer_id, change)
