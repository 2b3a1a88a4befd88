"""EventSweep: finish routing events that were stored but never routed (the process
died, or Temporal was unreachable, between storing and signalling). Runs every minute
on a schedule; routing is idempotent, so sweeping an event twice does no harm."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

SWEEP_WORKFLOW = "EventSweep"
SWEEP_ACTIVITY = "events.sweep"
SCHEDULE_ID = "events-sweep"


@workflow.defn(name=SWEEP_WORKFLOW)
class EventSweep:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(SWEEP_ACTIVITY, result_type=int,
                                               start_to_close_timeout=timedelta(minutes=5))


def sweep_schedules(_catalog: object) -> dict[str, Schedule]:
    return {SCHEDULE_ID: Schedule(
        action=ScheduleActionStartWorkflow(SWEEP_WORKFLOW, id="events-sweep", task_queue="journeys"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )}
