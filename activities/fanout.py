"""Activities of a schedule firing: select a page of due customers, enter a batch."""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.deps import Deps
from core.journeys.fanout import due_customers
from workflows.fanout import ENTER_BATCH, SELECT_DUE, DueCustomer, EnterBatchInput, SelectDueInput

CONCURRENT_STARTS = 16


class FanoutActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=SELECT_DUE)
    async def select_due(self, input: SelectDueInput) -> list[DueCustomer]:
        journey = self.deps.catalog.journey(input.journey_id).journey
        page = await asyncio.to_thread(due_customers, self.deps.db, self.deps.catalog, journey, input.moment,
                                       after=input.after, limit=input.limit)
        return [DueCustomer(customer_id=due.customer_id, occasion=due.occasion) for due in page]

    @activity.defn(name=ENTER_BATCH)
    async def enter_batch(self, input: EnterBatchInput) -> int:
        """Enter each customer for their occasion; returns how many started. Safe to
        repeat: an occasion already entered (or a customer already in the journey,
        or kept out by audience or reentry) starts nothing."""
        pinned = self.deps.catalog.journey(input.journey_id)
        entries = await self.deps.router.starter.enter_many(
            pinned, [(due.customer_id, f"{input.journey_id}:{due.occasion}") for due in input.due], at=input.moment,
            in_flight=CONCURRENT_STARTS)
        return sum(entry.started for entry in entries)
