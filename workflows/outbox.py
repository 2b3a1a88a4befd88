"""The event sweeper: finish routing events that were stored but never routed (the
process died, or Temporal was unreachable, between storing and signalling), and keep
the enrollments table and Temporal in agreement (core/journeys/reconcile.py).

One long-lived workflow (id ``events-sweeper``) rather than a schedule firing every
minute: a minute's schedule leaves 1,440 finished workflows a day in the Web UI's list,
this leaves one running workflow and one closed run a day. Each round is one activity
that sweeps every minute for an hour, heartbeating, so a worker that dies hands the
sweeping to another within a few minutes. Routing is idempotent, so sweeping an event
twice does no harm.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

SWEEPER_WORKFLOW = "EventSweeper"
SWEEPER_ID = "events-sweeper"
SWEEP_LOOP_ACTIVITY = "events.sweep_for"
# The once-a-minute schedule of earlier releases: the worker deletes it.
RETIRED_SCHEDULES = ("events-sweep",)

SWEEP_WORKFLOW = "EventSweep"  # the workflow that schedule started (see EventSweep)
SWEEP_ACTIVITY = "events.sweep"


class SweepLoop(BaseModel):
    every_seconds: float = 60.0
    for_seconds: float = 3600.0
    older_than_seconds: float = 60.0  # younger events are still being routed by whoever stored them


class SweeperInput(BaseModel):
    loop: SweepLoop = SweepLoop()
    rounds_per_run: int = 24  # then continue-as-new: a run a day with the defaults


class SweepReport(BaseModel):
    sweeps: int = 0
    routed: int = 0
    entries_started: int = 0  # half-made entries finished
    runs_closed: int = 0  # rows closed for runs that ended outside the journey
    rows_reopened: int = 0  # rows reopened for runs that are running
    replies_started: int = 0  # keyword and consent replies whose workflow never started


@workflow.defn(name=SWEEPER_WORKFLOW)
class EventSweeper:
    @workflow.run
    async def run(self, input: SweeperInput) -> None:
        loop = input.loop
        for _ in range(input.rounds_per_run):
            await workflow.execute_activity(
                SWEEP_LOOP_ACTIVITY, loop, result_type=SweepReport,
                start_to_close_timeout=timedelta(seconds=loop.for_seconds + 300),
                heartbeat_timeout=timedelta(seconds=3 * loop.every_seconds + 120),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                summary="sweep unrouted events",
            )
        workflow.continue_as_new(input)


@workflow.defn(name=SWEEP_WORKFLOW)
class EventSweep:
    """One sweep, as the retired ``events-sweep`` schedule started it. Kept registered so
    a run started just before an upgrade can finish; remove it in the next release."""

    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(SWEEP_ACTIVITY, result_type=int,
                                               start_to_close_timeout=timedelta(minutes=5))
