"""Journey controls over HTTP, as `journeys pause|resume|stop|drain`: GET the controls in
force, POST a new state for the journey (every version) or one version."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from core.journeys import controls
from language.catalog import PinnedJourney

router = APIRouter(tags=["journeys"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

JourneyPath = Annotated[str, Path(description="A journey id", pattern=r"^[a-z0-9_]{1,64}$")]
COMMAND_OF = {state: command for command, state in controls.COMMANDS.items()}


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["active", "paused", "draining", "stopped"]
    version: str | None = Field(default=None, pattern=r"^[0-9a-f]{6,64}$",
                                description="One version (content hash); omitted: every version")
    note: str | None = Field(default=None, max_length=500)
    by: str = Field(default="api", min_length=1, max_length=64, description="Who, for the record (no names)")


class ControlOut(BaseModel):
    journey_id: str
    version: str  # a content hash, or "*" for every version
    state: str
    changed_by: str
    changed_at: datetime
    note: str | None = None


class AppliedOut(BaseModel):
    journey_id: str
    version: str
    state: str
    runs_signalled: int
    schedule: str | None  # paused | unpaused | left paused (paused by hand) | null: no schedule


def _known(svc: ServicesDep, journey_id: str) -> PinnedJourney | None:
    """The journey as the directory has it (None for one that is gone); 404 for one never known."""
    current = svc.catalog.journeys.get(journey_id)
    if current is None and not controls.known_journey(svc.db, journey_id, set(svc.catalog.journeys)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no journey {journey_id!r}")
    return current


@router.get("/journeys/{journey_id}/controls", response_model=list[ControlOut],
            description="The controls in force for a journey: one row for every version (`*`) and one per "
                        "version set apart. None: the journey runs as usual.",
            responses={404: {"description": "No such journey"}})
async def get_controls(journey_id: JourneyPath, svc: ServicesDep) -> list[ControlOut]:
    _known(svc, journey_id)
    return [ControlOut.model_validate(row, from_attributes=True)
            for row in controls.list_controls(svc.db, journey_id)]


@router.post("/journeys/{journey_id}/controls", response_model=AppliedOut,
             description="Steer a journey: `paused` admits no one and holds every text and email of its runs "
                         "until `active` again; `draining` admits no one and lets runs finish; `stopped` ends "
                         "every run with outcome `stopped` and admits no one until `active`. With `version`, only "
                         "that version's runs and entries. Stored, so it survives restarts.",
             responses={404: {"description": "No such journey, or no such version of it"}})
async def post_control(journey_id: JourneyPath, body: ControlIn, svc: ServicesDep) -> AppliedOut:
    current = _known(svc, journey_id)
    if body.version is not None and not controls.known_version(svc.db, journey_id, body.version,
                                                               current.version if current else None):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no version {body.version!r} of journey {journey_id!r}")
    applied = await controls.apply_control(svc.db, svc.router.client, journey_id, COMMAND_OF[body.state],
                                           version=body.version, by=body.by, note=body.note,
                                           scheduled=controls.is_scheduled(current.journey if current else None))
    return AppliedOut(journey_id=applied.journey_id, version=applied.version, state=applied.state,
                      runs_signalled=applied.runs_signalled, schedule=applied.schedule)
