"""The activity of the daily loyalty job: one page of customers (see
core/loyalty/maintenance.py for what it does)."""

from __future__ import annotations

from temporalio import activity

from activities.deps import Deps
from core.loyalty.maintenance import run_page
from workflows.loyalty_maintenance import MAINTAIN_PAGE, MaintainPageInput, MaintainPageResult


class LoyaltyActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=MAINTAIN_PAGE)
    async def maintain_page(self, input: MaintainPageInput) -> MaintainPageResult:
        page = await run_page(self.deps.router, input.moment, after=input.after, limit=input.limit)
        return MaintainPageResult(customers=page.customers, refreshed=page.refreshed, tier_changes=page.tier_changes,
                                  reminders=page.reminders, next_after=page.next_after)
