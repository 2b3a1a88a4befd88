"""The sweeper's activity: route what was stored but never routed."""

from __future__ import annotations

from temporalio import activity

from activities.deps import Deps
from workflows.outbox import SWEEP_ACTIVITY


class OutboxActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=SWEEP_ACTIVITY)
    async def sweep(self) -> int:
        return await self.deps.router.sweep()
