"""LoyaltyMaintenance: one run of the daily loyalty job (core/loyalty/maintenance.py),
started by the ``loyalty-daily`` Temporal Schedule. It works page by page of
customers, each page one activity, so a big ledger never needs one long activity, and
after a worker restart the run goes on from the last page done. Every page is safe to
repeat: refreshes are recomputed, reminders have one id per customer and date."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

LOYALTY_WORKFLOW = "LoyaltyMaintenance"
MAINTAIN_PAGE = "loyalty.maintain_page"
SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class LoyaltyMaintenanceInput(BaseModel):
    # Set when continuing as new, or by hand; otherwise the schedule's nominal time.
    moment: datetime | None = None
    page_size: int = 500
    after: str | None = None
    customers: int = 0
    refreshed: int = 0
    tier_changes: int = 0
    reminders: int = 0


class MaintainPageInput(BaseModel):
    moment: datetime
    after: str | None = None
    limit: int = 500


class MaintainPageResult(BaseModel):
    customers: int
    refreshed: int
    tier_changes: int
    reminders: int
    next_after: str | None


class LoyaltyMaintenanceResult(BaseModel):
    moment: datetime
    customers: int
    refreshed: int
    tier_changes: int
    reminders: int


@workflow.defn(name=LOYALTY_WORKFLOW)
class LoyaltyMaintenance:
    @workflow.run
    async def run(self, input: LoyaltyMaintenanceInput) -> LoyaltyMaintenanceResult:
        # The nominal time, not the actual start: a late or caught-up firing does the
        # work of the day it was scheduled for.
        moment = input.moment or workflow.info().typed_search_attributes.get(SCHEDULED_TIME) or workflow.now()
        totals = input.model_copy(update={"moment": moment})
        while True:
            page: MaintainPageResult = await workflow.execute_activity(
                MAINTAIN_PAGE, MaintainPageInput(moment=moment, after=totals.after, limit=input.page_size),
                result_type=MaintainPageResult, start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)))
            totals = totals.model_copy(update={
                "after": page.next_after, "customers": totals.customers + page.customers,
                "refreshed": totals.refreshed + page.refreshed,
                "tier_changes": totals.tier_changes + page.tier_changes,
                "reminders": totals.reminders + page.reminders})
            if page.next_after is None:
                return LoyaltyMaintenanceResult(moment=moment, customers=totals.customers,
                                                refreshed=totals.refreshed, tier_changes=totals.tier_changes,
                                                reminders=totals.reminders)
            workflow.set_current_details(f"loyalty day {moment:%Y-%m-%d %H:%M} UTC: {totals.customers} customers, "
                                         f"up to `{page.next_after}`")
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(totals)
