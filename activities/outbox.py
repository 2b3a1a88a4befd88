"""The sweeper's activities: route what was stored but never routed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from temporalio import activity

from activities.deps import Deps
from core.clock import utcnow
from core.journeys.reconcile import reconcile
from workflows.outbox import SWEEP_ACTIVITY, SWEEP_LOOP_ACTIVITY, SweepLoop, SweepReport

# A new round looks back this far at Temporal's side; later looks overlap a little (the
# server's visibility lags behind its state).
RECONCILE_FIRST_LOOK = timedelta(hours=2)
RECONCILE_OVERLAP = timedelta(minutes=2)


class OutboxActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=SWEEP_LOOP_ACTIVITY)
    async def sweep_for(self, loop: SweepLoop) -> SweepReport:
        """Sweep every ``every_seconds`` for ``for_seconds``, heartbeating after each
        sweep; a worker shutting down ends the round early (the next one goes on)."""
        deadline = time.monotonic() + loop.for_seconds
        report = SweepReport()
        older_than = timedelta(seconds=loop.older_than_seconds)
        since = utcnow() - RECONCILE_FIRST_LOOK
        while True:
            report.routed += await self.deps.router.sweep(older_than=older_than)
            looked_at = utcnow()
            repairs = await reconcile(self.deps.router.starter, since)
            since = looked_at - RECONCILE_OVERLAP
            report.entries_started += repairs.entries_started
            report.runs_closed += repairs.runs_closed
            report.rows_reopened += repairs.rows_reopened
            report.sweeps += 1
            activity.heartbeat(report.sweeps)
            if time.monotonic() + loop.every_seconds > deadline or activity.is_worker_shutdown():
                return report
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(activity.wait_for_worker_shutdown(), timeout=loop.every_seconds)

    @activity.defn(name=SWEEP_ACTIVITY)
    async def sweep(self) -> int:
        """The retired schedule's one sweep (see workflows.outbox.EventSweep)."""
        return await self.deps.router.sweep()
