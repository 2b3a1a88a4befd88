"""Texts the engine sends outside journeys: keyword answers (STOP, HELP) and consent
confirmations. Exactly once per key (e.g. the inbound message they answer), recorded
like any message, never counted toward marketing caps."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import select

from language.config import Settings
from messaging.encoding import analyze
from messaging.senders.base import AmbiguousProviderError, OutgoingSms, ProviderError, SmsSender
from store.db import session_scope
from store.tables import Message

log = logging.getLogger(__name__)

ReplyKind = Literal["confirm", "welcome", "help", "stop"]


@dataclass
class ReplySender:
    db: Any
    sender: SmsSender
    settings: Settings

    def send(self, kind: ReplyKind, *, phone: str, customer_id: str | None, key: str, at: datetime) -> Message:
        body = getattr(self.settings.replies, kind)
        message_key = f"reply:{kind}:{key}"
        with session_scope(self.db) as session:
            existing = session.exec(select(Message).where(Message.key == message_key)).first()
            if existing is not None:
                return existing
            info = analyze(body)
            row = Message(id=uuid.uuid4().hex, key=message_key, customer_id=customer_id or "", purpose="reply",
                          counts_toward_caps=False, body=body, encoding=info.encoding, segments=info.segments,
                          status="sending", provider=self.sender.name, created_at=at, sent_at=at, updated_at=at)
            session.add(row)
        base = self.settings.links.base_url.rstrip("/")
        try:
            receipt = self.sender.send(OutgoingSms(to=phone, body=body, message_key=message_key,
                                                   status_callback=f"{base}/twilio/status?m={row.id}"))
            row.status, row.provider_message_id = "sent", receipt.provider_message_id
        except AmbiguousProviderError:
            row.status, row.reason = "unconfirmed", "provider_outcome_unknown"  # never resent
        except ProviderError as err:
            log.warning("%s reply %s not sent: %s", kind, row.id, err.reason)
            row.status, row.reason, row.error_code = "failed", err.reason, err.code
        with session_scope(self.db) as session:
            session.merge(row)
        return row
