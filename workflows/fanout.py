"""JourneyFanout: one firing of a time-based journey's schedule. It enters the due
customers page by page at a bounded rate, durably: after a worker restart it goes on
from the last page, and entering is idempotent per occasion, so a page done twice
starts no one twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

FANOUT_WORKFLOW = "JourneyFanout"
SELECT_DUE = "fanout.select_due"
ENTER_BATCH = "fanout.enter_batch"
SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class FanoutInput(BaseModel):
    journey_id: str
    per_second: float = 50.0  # entries per second, so a big broadcast never floods the system
    page_size: int = 500
    # Set when continuing as new, or by hand; otherwise the schedule's nominal time.
    moment: datetime | None = None
    after: str | None = None
    started: int = 0


class SelectDueInput(BaseModel):
    journey_id: str
    moment: datetime
    after: str | None
    limit: int


class DueCustomer(BaseModel):
    customer_id: str
    occasion: str


class EnterBatchInput(BaseModel):
    journey_id: str
    moment: datetime
    due: list[DueCustomer]


class FanoutResult(BaseModel):
    journey_id: str
    moment: datetime
    started: int


@workflow.defn(name=FANOUT_WORKFLOW)
class JourneyFanout:
    @workflow.run
    async def run(self, input: FanoutInput) -> FanoutResult:
        # The nominal time, not the actual start: a late or caught-up firing is for
        # the occasion it was scheduled for.
        moment = input.moment or workflow.info().typed_search_attributes.get(SCHEDULED_TIME) or workflow.now()
        moment = moment.replace(second=0, microsecond=0)
        after, started = input.after, input.started
        timeout, retry = timedelta(minutes=5), RetryPolicy(maximum_interval=timedelta(minutes=1))
        while True:
            due: list[DueCustomer] = await workflow.execute_activity(
                SELECT_DUE, SelectDueInput(journey_id=input.journey_id, moment=moment, after=after,
                                           limit=input.page_size),
                result_type=list[DueCustomer], start_to_close_timeout=timeout, retry_policy=retry)
            if not due:
                return FanoutResult(journey_id=input.journey_id, moment=moment, started=started)
            started += await workflow.execute_activity(
                ENTER_BATCH, EnterBatchInput(journey_id=input.journey_id, moment=moment, due=due), result_type=int,
                start_to_close_timeout=timeout, retry_policy=retry)
            after = due[-1].customer_id
            workflow.set_current_details(f"**{input.journey_id}** at {moment:%Y-%m-%d %H:%M} UTC: "
                                         f"{started} entered, up to customer `{after}`")
            if input.per_second > 0:
                await workflow.sleep(timedelta(seconds=len(due) / input.per_second), summary="rate limit")
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input.model_copy(update={"moment": moment, "after": after,
                                                                  "started": started}))
