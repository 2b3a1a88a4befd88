"""The activity of the daily retention job: batches of one kind for a bounded time
(see core/retention.py for what is kept, anonymised and deleted)."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.deps import Deps
from core.retention import run_for
from workflows.retention import APPLY_RETENTION, ApplyRetentionInput, ApplyRetentionResult, Cursor


class RetentionActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=APPLY_RETENTION)
    async def apply(self, input: ApplyRetentionInput) -> ApplyRetentionResult:
        # A retry after a crash goes on from the last batch heartbeated (each batch is
        # committed), not from where the workflow last heard.
        details = activity.info().heartbeat_details
        after = Cursor.model_validate(details[0]) if details else input.after
        loop = asyncio.get_running_loop()

        def beat(cursor: Cursor) -> None:  # from the batch thread
            loop.call_soon_threadsafe(activity.heartbeat, cursor.model_dump(mode="json"))

        batch = await asyncio.to_thread(run_for, self.deps.db, self.deps.catalog.settings.retention, input.kind,
                                        input.moment, after=after, batch_size=input.batch_size,
                                        budget_seconds=input.budget_seconds, on_batch=beat)
        return ApplyRetentionResult(kind=input.kind, changed=batch.changed, next_after=batch.next_after)
