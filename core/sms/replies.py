"""Texts the engine sends outside journeys: keyword answers (STOP, HELP) and consent
confirmations. Exactly once per key (e.g. the inbound message they answer), recorded
like any message, never counted toward marketing caps.

The row is written here; a Reply workflow sends it through the SMS task queue (its rate
limit, its retries, the settlement of unknown outcomes). ``send`` waits a few seconds
for it, so a welcome still goes before the journeys its opt-in starts; a reply that
cannot start now (Temporal unreachable) stays ``reserved`` and the sweeper starts it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.clock import utcnow
from language.config import Settings
from messaging.encoding import analyze
from store.db import Database, session_scope
from store.tables import Message
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.reply import REPLY_WORKFLOW, ReplyInput, reply_workflow_id

log = logging.getLogger(__name__)

ReplyKind = Literal["confirm", "welcome", "help", "stop", "reward"]  # reward: an answer to REDEEM, its own text
WAIT = timedelta(seconds=10)  # how long a caller waits for its reply to go out


@dataclass
class ReplySender:
    db: Database
    client: Client
    settings: Settings

    async def send(self, kind: ReplyKind, *, phone: str, customer_id: str | None, key: str, at: datetime,
                   body: str | None = None) -> Message:
        """``body``: the text, for a kind settings.yaml has no reply text for (reward)."""
        row = await asyncio.to_thread(self._reserve, kind, phone, customer_id, key, at, body)
        if row.status == "reserved":
            await self.start(row.id, row.key, wait=WAIT)
        with session_scope(self.db, readonly=True) as session:
            return session.get(Message, row.id) or row

    def _reserve(self, kind: ReplyKind, phone: str, customer_id: str | None, key: str, at: datetime,
                 body: str | None = None) -> Message:
        try:
            return self._insert(kind, phone, customer_id, key, at, body)
        except IntegrityError:  # the same reply reserved concurrently: it is that one
            with session_scope(self.db, readonly=True) as session:
                return session.exec(select(Message).where(Message.key == f"reply:{kind}:{key}")).one()

    def _insert(self, kind: ReplyKind, phone: str, customer_id: str | None, key: str, at: datetime,
                body: str | None = None) -> Message:
        body = body if body is not None else getattr(self.settings.replies, kind)
        message_key = f"reply:{kind}:{key}"
        with session_scope(self.db) as session:
            existing = session.exec(select(Message).where(Message.key == message_key)).first()
            if existing is not None:
                return existing
            info = analyze(body)
            row = Message(id=uuid.uuid4().hex, key=message_key, customer_id=customer_id or "", purpose="reply",
                          counts_toward_caps=False, body=body, reply_to=phone, encoding=info.encoding,
                          segments=info.segments, status="reserved", created_at=at, updated_at=at)
            session.add(row)
            return row

    async def start(self, message_id: str, message_key: str, *, wait: timedelta | None = None) -> None:
        """Start the reply's workflow (once: a second start finds the first); wait up to
        ``wait`` for it to finish. Never raises for Temporal: the sweeper tries again."""
        try:
            handle = await self.client.start_workflow(
                REPLY_WORKFLOW, ReplyInput(message_id=message_id), id=reply_workflow_id(message_key),
                task_queue=JOURNEY_TASK_QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, request_eager_start=True)
        except WorkflowAlreadyStartedError:
            return  # started and finished before: sent (or settled) already
        except Exception:
            log.warning("reply %s could not be started now; the sweeper will start it", message_id, exc_info=True)
            return
        if wait is not None and not await self._went_out(message_id, wait):
            log.warning("reply %s (workflow %s) is still on its way after %ss", message_id, handle.id,
                        wait.total_seconds())

    async def _went_out(self, message_id: str, wait: timedelta) -> bool:
        """Watch the row, not the workflow's result: waiting on a result would let a
        time-skipping test server jump the clock."""
        deadline = asyncio.get_running_loop().time() + wait.total_seconds()
        while asyncio.get_running_loop().time() < deadline:
            if await asyncio.to_thread(self._status, message_id) not in ("reserved", "sending"):
                return True
            await asyncio.sleep(0.05)
        return False

    def _status(self, message_id: str) -> str | None:
        with session_scope(self.db, readonly=True) as session:
            row = session.get(Message, message_id)
            return row.status if row else None

    async def start_reserved(self, older_than: timedelta = timedelta(minutes=1), limit: int = 200) -> int:
        """The sweeper's part: start the replies that never got their workflow."""
        with session_scope(self.db, readonly=True) as session:
            rows = session.exec(select(Message.id, Message.key).where(
                Message.purpose == "reply", Message.status == "reserved",
                Message.created_at < utcnow() - older_than).limit(limit)).all()
        for message_id, message_key in rows:
            await self.start(message_id, message_key)
        return len(rows)
