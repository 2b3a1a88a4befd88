"""Reports: a journey's figures per version, and the whole program's (docs/reports.md).
The same JSON as `journeys report ... --json`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from core.clock import utcnow
from core.reports.journey import JourneyReport, Unknown, journey_report
from core.reports.period import parse_bound
from core.reports.program import ProgramReport, program_report

router = APIRouter(prefix="/reports", tags=["reports"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

JourneyPath = Annotated[str, Path(description="The journey id", pattern=r"^[a-z0-9_]{1,64}$")]
SinceQuery = Annotated[str | None, Query(description="At or after this ISO date (00:00 UTC) or datetime with its "
                                                     "zone", max_length=40)]
UntilQuery = Annotated[str | None, Query(description="Before this datetime, or up to the end of this ISO date "
                                                     "(UTC); default: now", max_length=40)]
VersionQuery = Annotated[str | None, Query(description="Only this journey version",
                                           pattern=r"^[A-Za-z0-9_.-]{1,32}$")]


def _bounds(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    found: dict[str, datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            found[name] = parse_bound(text, end=name == "until") if text is not None else None
        except ValueError as err:
            raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": str(err),
                                           "input": text}]) from None
    return found["since"], found["until"]


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such journey, or no such version of it"}}


@router.get("/journeys/{journey_id}", response_model=JourneyReport, responses=_NOT_FOUND)
async def get_journey_report(journey_id: JourneyPath, svc: ServicesDep, since: SinceQuery = None,
                             until: UntilQuery = None, version: VersionQuery = None) -> JourneyReport:
    """Entries, outcomes, every step's texts (sent, delivered, clicks, replies, opt-outs,
    coupons, cost), the goal, and each split against its holdout: per journey version,
    for the runs that entered in the period."""
    start, end = _bounds(since, until)
    pinned = svc.catalog.journeys.get(journey_id)
    try:
        return await asyncio.to_thread(
            journey_report, svc.db, journey_id, settings=svc.catalog.settings,
            current=pinned.journey if pinned else None, current_version=pinned.version if pinned else None,
            since=start, until=end, version=version)
    except Unknown as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None


@router.get("/program", response_model=ProgramReport)
async def get_program_report(svc: ServicesDep, since: SinceQuery = None, until: UntilQuery = None) -> ProgramReport:
    """SMS subscribers by month, cohorts of first purchase, purchases, 12-month CLV of
    subscribers and the rest, and the loyalty program, for the period."""
    start, end = _bounds(since, until)
    return await asyncio.to_thread(program_report, svc.db, since=start, until=end or utcnow())
