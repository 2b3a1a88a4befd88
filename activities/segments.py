"""The segment refresh activity, run by the SegmentRefresh workflow (on its schedule)."""

from __future__ import annotations

import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.deps import Deps
from core.clock import utcnow
from core.segments import refresh as segments
from language.segment_sql import RuleError
from workflows.segment_refresh import REFRESH_ACTIVITY, RefreshCall, RefreshReport


class SegmentActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name=REFRESH_ACTIVITY)
    async def refresh(self, call: RefreshCall) -> RefreshReport:
        # The journey's convention: simulations use the workflow's clock, production the wall clock.
        at = call.at if call.simulated else utcnow()
        started, outcome = time.monotonic(), "error"
        try:
            report = await segments.refresh(self.deps.catalog, self.deps.db, self.deps.router, at=at,
                                            refresh_id=call.refresh_id, segments=call.segments,
                                            announce=call.announce, progress=lambda note: activity.heartbeat(note))
            outcome = "ok"
            return report
        except (segments.SegmentError, RuleError) as err:  # a bad segment or rule: retrying cannot help
            raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
        finally:
            self.deps.metrics.segment_refresh.labels(outcome).observe(time.monotonic() - started)
