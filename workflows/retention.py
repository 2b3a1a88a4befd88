"""Retention: one run of the daily retention job (core/retention.py), started by the
``retention-daily`` Temporal Schedule. Kind after kind (events, messages, clicks,
decisions, emails), it calls the retention activity, which works batch after batch
for a bounded time and returns where it stopped; the next call goes on from there.
Every batch is its own transaction and safe to repeat (anonymised rows are marked,
deleted rows are gone), so a crash or a worker restart loses nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

RETENTION_WORKFLOW = "Retention"
APPLY_RETENTION = "retention.apply"
KINDS = ("events", "messages", "clicks", "decisions", "emails")
EMAILS_PATCH = "retention-emails"  # runs recorded before email bodies were a kind do the first four only
SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class Cursor(BaseModel):
    """The last row a batch looked at: its time and its key (rows go in that order)."""

    at: datetime
    key: str


class RetentionInput(BaseModel):
    # Set when continuing as new, or by hand; otherwise the schedule's nominal time.
    moment: datetime | None = None
    batch_size: int = 1000
    budget_seconds: float = 60.0  # per activity call
    kind: str = KINDS[0]
    after: Cursor | None = None
    changed: dict[str, int] = {}


class ApplyRetentionInput(BaseModel):
    moment: datetime
    kind: str
    after: Cursor | None = None
    batch_size: int = 1000
    budget_seconds: float = 60.0  # then the activity returns; the workflow calls it again


class ApplyRetentionResult(BaseModel):
    kind: str
    changed: int  # rows anonymised or deleted by this call
    next_after: Cursor | None  # None: the kind is done


class RetentionResult(BaseModel):
    moment: datetime
    changed: dict[str, int]  # per kind: rows anonymised (events, messages, clicks) or deleted (decisions)


@workflow.defn(name=RETENTION_WORKFLOW)
class Retention:
    @workflow.run
    async def run(self, input: RetentionInput) -> RetentionResult:
        # The nominal time, not the actual start: a late firing keeps the periods of its day.
        moment = input.moment or workflow.info().typed_search_attributes.get(SCHEDULED_TIME) or workflow.now()
        state = input.model_copy(update={"moment": moment, "changed": dict(input.changed)})
        kinds = KINDS if workflow.patched(EMAILS_PATCH) else KINDS[:4]
        for kind in kinds[kinds.index(state.kind):]:
            state.kind = kind
            while True:
                step: ApplyRetentionResult = await workflow.execute_activity(
                    APPLY_RETENTION, ApplyRetentionInput(moment=moment, kind=kind, after=state.after,
                                                         batch_size=input.batch_size,
                                                         budget_seconds=input.budget_seconds),
                    result_type=ApplyRetentionResult, start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)))
                state.changed[kind] = state.changed.get(kind, 0) + step.changed
                state.after = step.next_after
                if step.next_after is None:
                    break
                workflow.set_current_details(f"retention {moment:%Y-%m-%d %H:%M} UTC: {kind} up to "
                                             f"{step.next_after.at:%Y-%m-%d %H:%M}")
                if workflow.info().is_continue_as_new_suggested():
                    workflow.continue_as_new(state)
        return RetentionResult(moment=moment, changed=state.changed)
