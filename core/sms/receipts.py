"""Delivery receipts: the provider's word on a message, applied idempotently and never
backwards (receipts repeat and arrive out of order: delivered stays delivered)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from core.customers.numbers import apply_provider_error
from core.event import EventIn, EventPath
from store.db import Database, session_scope
from store.tables import Message

# How far along each provider status is; a receipt never moves a message back.
PROGRESS = {"accepted": 1, "scheduled": 1, "queued": 1, "sending": 2, "sent": 3,
            "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5}
FINAL = {"delivered": "delivered", "read": "delivered", "undelivered": "undelivered", "failed": "failed",
         "canceled": "failed"}


@dataclass
class ReceiptResult:
    known: bool
    applied: bool = False
    status: str | None = None


async def apply_receipt(router: EventPath, provider_message_id: str, provider_status: str,
                        error_code: str | None, at: datetime, message_id: str | None = None) -> ReceiptResult:
    """``message_id`` is ours, from the callback URL: it also finds a message whose send
    ended ambiguously (we never learned the provider's id), and confirms it."""
    provider_status = provider_status.lower()
    error_code = error_code or None
    outcome = await asyncio.to_thread(_apply, router.db, provider_message_id, provider_status, error_code, at,
                                      message_id)
    if outcome is None:
        return ReceiptResult(known=False)
    message, applied = outcome
    if applied and provider_status in FINAL and message.customer_id:  # a reply to an unknown number has none
        kind = "sms_delivered" if FINAL[provider_status] == "delivered" else "sms_failed"
        properties = {"message_id": message.id, "journey": message.journey_id, "step": message.step_id,
                      "status": provider_status, "error_code": error_code}
        await router.route(EventIn(id=f"receipt:{provider_message_id}:{provider_status}", type=kind,
                                   customer_id=message.customer_id, occurred_at=at, properties=properties),
                           source="twilio")
        if message.customer_id:
            for event in await asyncio.to_thread(apply_provider_error, router.db, message.customer_id,
                                                 error_code, at, f"receipt:{provider_message_id}:opted_out"):
                await router.route(event, source="twilio")
    return ReceiptResult(known=True, applied=applied, status=message.status)


def _apply(db: Database, sid: str, provider_status: str, error_code: str | None,
           at: datetime, message_id: str | None) -> tuple[Message, bool] | None:
    with session_scope(db) as session:
        message = session.exec(select(Message).where(Message.provider_message_id == sid)).first()
        if message is None and message_id:
            message = session.get(Message, message_id)
            if message is not None and message.provider_message_id not in (None, sid):
                return None  # our id with someone else's sid: not this message
        if message is None:
            return None
        if message.provider_message_id is None:
            message.provider_message_id = sid
        if message.status == "unconfirmed":
            message.status, message.reason = "sent", None  # the provider has it after all
        current = PROGRESS.get(message.provider_status or "", 0)
        new = PROGRESS.get(provider_status, 0)
        if new <= current or message.status in FINAL.values():
            return message, False
        message.provider_status = provider_status
        if provider_status in FINAL:
            message.status = FINAL[provider_status]
            if error_code:
                message.error_code, message.reason = error_code, f"provider_error:{error_code}"
        message.updated_at = at
        session.add(message)
        return message, True

