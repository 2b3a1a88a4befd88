"""The hand-written baseline of the throughput benchmark: the benchmark journey's work
(send an SMS, wait 1 s, check the customer, award points, update segments) written
directly as a Temporal workflow calling plain (regular) activities.

Workflow definitions only: this module is loaded into the workflow sandbox, so it
imports nothing but temporalio and pydantic. The activities live in
``bench.throughput``; the workflow calls them by name.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "BaselineJourney"
TASK_QUEUE = "bench-baseline"
SMS_TASK_QUEUE = "bench-baseline-sms"

SEND_SMS = "baseline.send_sms"
READ_CUSTOMER = "baseline.read_customer"
AWARD_POINTS = "baseline.award_points"
UPDATE_SEGMENTS = "baseline.update_segments"

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


class BaselineInput(BaseModel):
    run_id: str
    customer_id: str


class BaselineResult(BaseModel):
    outcome: str
    message_id: str | None = None
    balance: int | None = None


@workflow.defn(name=WORKFLOW_NAME)
class BaselineWorkflow:
    @workflow.run
    async def run(self, input: BaselineInput) -> BaselineResult:
        message_id: str = await workflow.execute_activity(
            SEND_SMS, input, result_type=str, task_queue=SMS_TASK_QUEUE,
            start_to_close_timeout=timedelta(seconds=60), retry_policy=RETRY,
        )
        await workflow.sleep(timedelta(seconds=1))
        opted_in: bool = await workflow.execute_activity(
            READ_CUSTOMER, input, result_type=bool, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
        )
        if not opted_in:
            return BaselineResult(outcome="skipped", message_id=message_id)
        balance: int = await workflow.execute_activity(
            AWARD_POINTS, input, result_type=int, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
        )
        await workflow.execute_activity(
            UPDATE_SEGMENTS, input, start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
        )
        return BaselineResult(outcome="completed", message_id=message_id, balance=balance)


TRIVIAL_WORKFLOW = "TrivialWorkflow"
TRIVIAL_TASK_QUEUE = "bench-trivial"


@workflow.defn(name=TRIVIAL_WORKFLOW)
class TrivialWorkflow:
    """No activity, no timer: one workflow task. Its start+complete rate is what the
    server and one worker process can do at all (bench/fanout.py divides by it)."""

    @workflow.run
    async def run(self, n: int) -> int:
        return n
