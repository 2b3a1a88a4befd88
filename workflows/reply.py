"""Reply: one keyword or consent reply (STOP, HELP, the opt-in confirmation, the
welcome), sent through the same durable path as journey texts: the SMS task queue (its
rate limit), retries, and settlement of an unknown outcome. One workflow per reply
message, so each inbound message is answered exactly once."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.contracts import SMS_TASK_QUEUE

REPLY_WORKFLOW = "Reply"
SEND_REPLY = "replies.send"
SETTLE_REPLY = "replies.settle"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))


class ReplyInput(BaseModel):
    message_id: str  # the reply's row: its body and number stay in the database


class ReplyOutcome(BaseModel):
    status: Literal["sent", "failed", "unconfirmed", "absent"]
    settle_at: datetime | None = None


def reply_workflow_id(message_key: str) -> str:
    """An id per reply, without the number or the inbound message's own text in it."""
    return f"reply/{hashlib.sha256(message_key.encode()).hexdigest()[:32]}"


@workflow.defn(name=REPLY_WORKFLOW)
class ReplyWorkflow:
    @workflow.run
    async def run(self, input: ReplyInput) -> str:
        outcome = await self._call(SEND_REPLY, input)
        while outcome.status in ("unconfirmed", "absent"):
            if outcome.status == "unconfirmed":
                assert outcome.settle_at is not None
                wait = (outcome.settle_at - workflow.now()).total_seconds()
                if wait > 0:
                    await workflow.sleep(wait, summary="the provider's word on the reply")
                outcome = await self._call(SETTLE_REPLY, input)
            else:
                outcome = await self._call(SEND_REPLY, input)
        return outcome.status

    @staticmethod
    async def _call(activity: str, input: ReplyInput) -> ReplyOutcome:
        return await workflow.execute_activity(activity, input, result_type=ReplyOutcome, task_queue=SMS_TASK_QUEUE,
                                               start_to_close_timeout=timedelta(seconds=60), retry_policy=RETRY)
