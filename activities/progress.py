"""Where each run is and how it ended, in the enrollments table (for ops and reports).

Plain UPDATE statements: both activities run for every run, and neither needs the rows
loaded first."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import SQLModel
from temporalio import activity

from activities.deps import Deps
from core.clock import utcnow
from store.db import session_scope
from store.tables import Enrollment, Message
from workflows import activity_names as names
from workflows.contracts import FinishInput, ProgressInput

ENROLLMENTS = SQLModel.metadata.tables[Enrollment.__tablename__]
MESSAGES = SQLModel.metadata.tables[Message.__tablename__]


class ProgressActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=names.RECORD_PROGRESS)
    def record_progress(self, input: ProgressInput) -> None:
        with session_scope(self.deps.db) as session:
            session.execute(update(ENROLLMENTS).where(ENROLLMENTS.c.id == input.run.enrollment_id,
                                                      ENROLLMENTS.c.status == "active")
                            .values(current_step=input.step, variants=dict(input.variants)))

    @activity.defn(name=names.FINISH)
    def finish(self, input: FinishInput) -> None:
        ended_at = input.at if input.run.simulated else utcnow()
        with session_scope(self.deps.db) as session:
            session.execute(update(ENROLLMENTS).where(ENROLLMENTS.c.id == input.run.enrollment_id)
                            .values(status="ended", outcome=input.outcome, ended_at=ended_at, current_step=None,
                                    variants=dict(input.variants)))
            # A text still waiting for its send window when the run ends (an exit during a
            # deferral) will never go: say so, rather than leave it deferred for ever.
            session.execute(update(MESSAGES).where(MESSAGES.c.enrollment_id == input.run.enrollment_id,
                                                   MESSAGES.c.status == "deferred")
                            .values(status="skipped", reason="journey_ended", updated_at=ended_at))
