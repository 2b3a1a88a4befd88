"""The SegmentRefresh workflow: one refresh of the rule segments, run as one activity.

A Temporal Schedule (``core.segments.refresh.refresh_schedule``) starts it every
``segments.refresh``; ``journeys segments refresh`` runs the same refresh directly.
The workflow only hands the activity a refresh id and a moment: all database work
happens in ``activities.segments``. Its refresh id is the workflow's run id, so a
retried activity routes the same event ids (routed once) and two runs never share one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "SegmentRefresh"
REFRESH_ACTIVITY = "segments.refresh"
SCHEDULE_ID = "segments-refresh"


@dataclass
class SegmentRefreshInput:
    segments: list[str] | None = None  # None: every rule segment
    announce: bool = True  # route segment_entered / segment_exited (False: a silent backfill)
    # Simulations run on the time-skipping server from a chosen instant: the refresh's
    # clock is the workflow clock shifted by this offset (0 in production).
    clock_offset_seconds: float = 0.0
    simulated: bool = False


@dataclass
class RefreshCall:
    """The activity's input."""

    refresh_id: str
    at: datetime  # the workflow's clock: used in simulations; production reads the wall clock
    segments: list[str] | None = None
    announce: bool = True
    simulated: bool = False


@dataclass
class SegmentResult:
    segment: str
    entered: int = 0
    exited: int = 0
    size: int = 0
    seconds: float = 0.0


@dataclass
class RefreshReport:
    refresh_id: str
    at: datetime
    segments: list[SegmentResult] = field(default_factory=list)
    events: int = 0  # segment_entered / segment_exited routed
    duplicates: int = 0  # already routed by an earlier attempt
    started: int = 0  # journeys those events started
    seconds: float = 0.0


@workflow.defn(name=WORKFLOW_NAME)
class SegmentRefreshWorkflow:
    @workflow.run
    async def run(self, input: SegmentRefreshInput) -> RefreshReport:
        info = workflow.info()
        call = RefreshCall(
            refresh_id=f"{info.workflow_id}/{info.run_id}",
            at=workflow.now() + timedelta(seconds=input.clock_offset_seconds),
            segments=input.segments,
            announce=input.announce,
            simulated=input.simulated,
        )
        return await workflow.execute_activity(
            REFRESH_ACTIVITY,
            call,
            result_type=RefreshReport,
            # A first refresh of a large audience routes many events: give it time, and
            # notice a dead worker through missed heartbeats rather than the deadline.
            start_to_close_timeout=timedelta(hours=6),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=2)),
        )
