"""Tracked short links: a click is recorded once per request and becomes a
`link_clicked` event that reaches `clicked('<step>')` and `wait_for`."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from core.event import EventIn, EventPath
from store.db import session_scope
from store.tables import Click, Link


async def record_click(router: EventPath, code: str, *, at: datetime, click_id: str | None = None) -> str | None:
    """Record a click on ``code``; returns the target URL, or None for an unknown code."""
    click_id = click_id or uuid.uuid4().hex

    def store() -> Link | None:
        with session_scope(router.db) as session:
            link = session.get(Link, code)
            if link is not None:
                session.add(Click(link_code=code, event_id=f"click:{click_id}", clicked_at=at))
            return link

    link = await asyncio.to_thread(store)
    if link is None:
        return None
    await router.route(EventIn(id=f"click:{click_id}", type="link_clicked", customer_id=link.customer_id,
                               occurred_at=at, properties={"code": code, "url": link.url,
                                                           "enrollment_id": link.enrollment_id,
                                                           "journey": link.journey_id, "step": link.step_id}),
                       source="link")
    return link.url
