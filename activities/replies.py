"""The reply activities: send a keyword or consent reply once, and settle its outcome
when the provider's answer was lost (see core/sms/settlement.py)."""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import Deps
from core.clock import utcnow
from core.sms.settlement import settle
from messaging.senders.base import (
    AmbiguousProviderError,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
)
from store.db import session_scope
from store.tables import Message
from workflows.reply import SEND_REPLY, SETTLE_REPLY, ReplyInput, ReplyOutcome

log = logging.getLogger(__name__)


class ReplyActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=SEND_REPLY)
    async def send(self, input: ReplyInput) -> ReplyOutcome:
        return await asyncio.to_thread(self._send, input.message_id)

    @activity.defn(name=SETTLE_REPLY)
    async def settle(self, input: ReplyInput) -> ReplyOutcome:
        settled = await asyncio.to_thread(settle, self.deps.db, self.deps.sender, input.message_id, at=utcnow(),
                                          grace=self.deps.settle_after)
        if settled == "absent":
            return ReplyOutcome(status="absent")
        return self._outcome(input.message_id)

    def _send(self, message_id: str) -> ReplyOutcome:
        now = utcnow()
        with session_scope(self.deps.db) as session:
            row = session.get(Message, message_id)
            if row is None:
                raise ApplicationError(f"no reply message {message_id}", non_retryable=True)
            if row.status == "sending":  # an attempt died mid-call: the provider may have it
                row.status, row.reason = "unconfirmed", "provider_outcome_unknown"
            if row.status != "reserved":
                session.add(row)
                return self._outcome_of(row)
            row.status, row.sent_at, row.updated_at, row.provider = "sending", now, now, self.deps.sender.name
            session.add(row)
            base = self.deps.catalog.settings.links.base_url.rstrip("/")
            sms = OutgoingSms(to=row.reply_to or "", body=row.body or "", message_key=row.key,
                              status_callback=f"{base}/twilio/status?m={row.id}")
        try:
            receipt = self.deps.sender.send(sms)
        except RetryableProviderError:
            self._update(message_id, status="reserved", sent_at=None)  # nothing reached the provider: retried
            raise
        except AmbiguousProviderError as err:
            log.warning("reply %s: provider outcome unknown (%s); settling", message_id, err.reason)
            return self._update(message_id, status="unconfirmed", reason="provider_outcome_unknown")
        except PermanentProviderError as err:
            log.warning("reply %s not sent: %s", message_id, err.reason)
            return self._update(message_id, status="failed", reason=err.reason, error_code=err.code)
        return self._update(message_id, status="sent", provider_message_id=receipt.provider_message_id)

    def _update(self, message_id: str, **fields: object) -> ReplyOutcome:
        with session_scope(self.deps.db) as session:
            row = session.get(Message, message_id)
            assert row is not None
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            session.add(row)
            return self._outcome_of(row)

    def _outcome(self, message_id: str) -> ReplyOutcome:
        with session_scope(self.deps.db, readonly=True) as session:
            row = session.get(Message, message_id)
            if row is None:
                raise ApplicationError(f"no reply message {message_id}", non_retryable=True)
            return self._outcome_of(row)

    def _outcome_of(self, row: Message) -> ReplyOutcome:
        if row.status == "unconfirmed":
            return ReplyOutcome(status="unconfirmed",
                                settle_at=(row.sent_at or row.created_at) + self.deps.settle_after)
        if row.status in ("failed", "skipped"):
            return ReplyOutcome(status="failed")
        if row.status == "reserved":  # released by a settlement that found nothing
            return ReplyOutcome(status="absent")
        return ReplyOutcome(status="sent")
