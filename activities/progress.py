"""Where each run is and how it ended, in the enrollments table (for ops and reports)."""

from __future__ import annotations

from temporalio import activity

from activities.contracts import FinishInput, ProgressInput
from activities.deps import Deps
from engine.customers import utcnow
from store.db import session_scope
from store.tables import Enrollment
from workflows import activity_names as names


class ProgressActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=names.RECORD_PROGRESS)
    def record_progress(self, input: ProgressInput) -> None:
        with session_scope(self.deps.engine) as session:
            run = session.get(Enrollment, input.run.enrollment_id)
            if run is not None and run.status == "active":
                run.current_step, run.variants = input.step, dict(input.variants)
                session.add(run)

    @activity.defn(name=names.FINISH)
    def finish(self, input: FinishInput) -> None:
        ended_at = input.at if input.run.simulated else utcnow()
        with session_scope(self.deps.engine) as session:
            run = session.get(Enrollment, input.run.enrollment_id)
            if run is not None:
                run.status, run.outcome, run.ended_at = "ended", input.outcome, ended_at
                run.current_step, run.variants = None, dict(input.variants)
                session.add(run)
