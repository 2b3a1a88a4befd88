"""Where each run is and how it ended, in the enrollments table (for ops and reports)."""

from __future__ import annotations

from sqlmodel import select
from temporalio import activity

from activities.deps import Deps
from core.clock import utcnow
from store.db import session_scope
from store.tables import Enrollment, Message
from workflows import activity_names as names
from workflows.contracts import FinishInput, ProgressInput


class ProgressActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=names.RECORD_PROGRESS)
    def record_progress(self, input: ProgressInput) -> None:
        with session_scope(self.deps.db) as session:
            run = session.get(Enrollment, input.run.enrollment_id)
            if run is not None and run.status == "active":
                run.current_step, run.variants = input.step, dict(input.variants)
                session.add(run)

    @activity.defn(name=names.FINISH)
    def finish(self, input: FinishInput) -> None:
        ended_at = input.at if input.run.simulated else utcnow()
        with session_scope(self.deps.db) as session:
            run = session.get(Enrollment, input.run.enrollment_id)
            if run is not None:
                run.status, run.outcome, run.ended_at = "ended", input.outcome, ended_at
                run.current_step, run.variants = None, dict(input.variants)
                session.add(run)
            # A text still waiting for its send window when the run ends (an exit during a
            # deferral) will never go: say so, rather than leave it deferred for ever.
            for message in session.exec(select(Message).where(Message.enrollment_id == input.run.enrollment_id,
                                                              Message.status == "deferred")):
                message.status, message.reason, message.updated_at = "skipped", "journey_ended", ended_at
                session.add(message)
