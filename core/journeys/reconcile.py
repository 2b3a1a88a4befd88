"""The sweeper's other half: the enrollments table and Temporal kept in agreement.

Both ways, once a minute: half-made entries are started; runs that ended outside the
journey (an operator's terminate, a timeout) close their rows; runs that are running
while their row says otherwise (a crash in an older release) reopen it. What it repairs
it logs, and returns for the sweeper's report.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from core.journeys.enrollment import CLOSED_OUTCOMES, ENROLLMENT_MEMO, Starter, close_run
from store.db import session_scope
from store.tables import Enrollment
from workflows.io import CUSTOMER_ID, JOURNEY_ID, JOURNEY_VERSION, WORKFLOW_NAME

log = logging.getLogger(__name__)


@dataclass
class Repairs:
    entries_started: int = 0
    runs_closed: int = 0
    rows_reopened: int = 0


async def reconcile(starter: Starter, since: datetime) -> Repairs:
    """Repair what disagrees; ``since``: how far back to look at Temporal's side."""
    repairs = Repairs(entries_started=await starter.finish_half_made())
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    ended = " OR ".join(f"ExecutionStatus = '{status}'" for status in ("Terminated", "TimedOut", "Failed", "Canceled"))
    try:
        async for run in starter.client.list_workflows(
                f"WorkflowType = '{WORKFLOW_NAME}' AND CloseTime > '{stamp}' AND ({ended})"):
            enrollment_id = await run.memo_value(ENROLLMENT_MEMO, None)
            outcome = CLOSED_OUTCOMES.get(run.status) if run.status else None
            if enrollment_id and await asyncio.to_thread(close_run, starter.db, enrollment_id, outcome or "lost"):
                repairs.runs_closed += 1
        async for run in starter.client.list_workflows(
                f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running' AND StartTime > '{stamp}'"):
            if await asyncio.to_thread(_reopen, starter, run, await run.memo_value(ENROLLMENT_MEMO, None)):
                repairs.rows_reopened += 1
    except RPCError as err:  # a server without visibility (the time-skipping test server)
        log.debug("reconcile: cannot list workflows (%s)", err.message)
    if repairs.entries_started or repairs.runs_closed or repairs.rows_reopened:
        log.warning("reconciled enrollments with Temporal: %s", repairs)
    return repairs


def _reopen(starter: Starter, run: WorkflowExecution, enrollment_id: str | None) -> bool:
    """A running run's row must say active (and started); True if it had to be changed."""
    if not enrollment_id or run.status != WorkflowExecutionStatus.RUNNING:
        return False
    attributes = run.typed_search_attributes
    with session_scope(starter.db) as session:
        row = session.get(Enrollment, enrollment_id)
        if row is None:  # deleted by an older release's failed-start cleanup
            journey, version, customer = (attributes.get(JOURNEY_ID), attributes.get(JOURNEY_VERSION),
                                          attributes.get(CUSTOMER_ID))
            if not (journey and version and customer):
                return False
            session.add(Enrollment(id=enrollment_id, journey_id=journey, journey_version=version,
                                   customer_id=customer, workflow_id=run.id, entered_at=run.start_time,
                                   started_at=run.start_time))
            log.warning("enrollment %s: its run is running; recreated", enrollment_id)
            return True
        if row.status == "active" and row.started_at is not None:
            return False
        row.status, row.outcome, row.ended_at = "active", None, None
        row.started_at = row.started_at or run.start_time
        session.add(row)
        log.warning("enrollment %s: its run is running; reopened", enrollment_id)
        return True
