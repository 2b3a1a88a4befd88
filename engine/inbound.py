"""Inbound SMS: opt-out and help keywords, and replies that answer an `ask`.

Keywords match the whole message, case- and space-insensitively. STOP takes effect
at once for every journey: consent becomes opted_out before anything else happens,
and every later send checks consent afresh.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from engine import consent
from engine.events import EventIn, EventRouter
from store.db import session_scope
from store.tables import Message

OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN = {"START", "YES", "UNSTOP"}
HELP = {"HELP", "INFO"}


def keyword_of(body: str) -> str | None:
    """'opt_out' | 'opt_in' | 'help' | None for an ordinary reply."""
    word = "".join(body.split()).upper()
    if word in OPT_OUT or word == "OPTOUT":
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word in HELP:
        return "help"
    return None


@dataclass
class InboundResult:
    keyword: str | None
    event_id: str


async def handle_inbound(router: EventRouter, customer_id: str, body: str, *, at: datetime,
                         message_sid: str | None = None) -> InboundResult:
    sid = message_sid or uuid.uuid4().hex
    keyword = keyword_of(body)
    if keyword == "opt_out":
        await _consent_change(router, customer_id, "opted_out", sid, at, body)
        return InboundResult(keyword, f"inbound:{sid}:opted_out")
    if keyword == "opt_in":
        await _consent_change(router, customer_id, "opted_in", sid, at, body)
        return InboundResult(keyword, f"inbound:{sid}:opted_in")
    if keyword == "help":
        return InboundResult(keyword, "")
    reply_to = _awaiting_reply(router.engine, customer_id, at)
    event = EventIn(id=f"inbound:{sid}", type="sms_replied", customer_id=customer_id, occurred_at=at,
                    properties={"body": body, "reply_to": reply_to})
    await router.route(event, source="sms")
    return InboundResult(None, event.id)


async def _consent_change(router: EventRouter, customer_id: str, status: str, sid: str, at: datetime,
                          body: str) -> None:
    import asyncio

    changed = await asyncio.to_thread(consent.record, router.engine, customer_id, status, source="sms_keyword",
                                      at=at, disclosure=f"customer texted {body.strip()!r}")
    if changed:
        await router.route(EventIn(id=f"inbound:{sid}:{status}", type=status, customer_id=customer_id,
                                   occurred_at=at, properties={"source": "sms_keyword"}), source="sms")


def _awaiting_reply(engine: Any, customer_id: str, at: datetime) -> dict[str, Any] | None:
    """The most recent question sent to the customer: replies answer the latest ask."""
    with session_scope(engine) as session:
        message = session.exec(
            select(Message).where(Message.customer_id == customer_id, col(Message.expects_reply).is_(True),
                                  col(Message.status).in_(("sent", "delivered", "unconfirmed")),
                                  col(Message.sent_at) <= at)
            .order_by(col(Message.sent_at).desc())
        ).first()
        if message is None:
            return None
        message.replied_at = at
        session.add(message)
        return {"enrollment_id": message.enrollment_id, "journey": message.journey_id, "step": message.step_id,
                "message_id": message.id}
