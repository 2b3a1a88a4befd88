"""The sweeper's activities: route what was stored but never routed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from temporalio import activity

from activities.deps import Deps
from workflows.outbox import SWEEP_ACTIVITY, SWEEP_LOOP_ACTIVITY, SweepLoop, SweepReport


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
        while True:
            report.routed += await self.deps.router.sweep(older_than=older_than)
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
