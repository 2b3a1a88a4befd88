"""Manual segment memberships: add a customer to, or remove them from, a manual segment.

The same path as a journey's `update_segments` step: the change is stored, then
announced as `segment_entered` / `segment_exited`, which starts the journeys those
events trigger. Rule segments are computed by refreshes and cannot be changed here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel
from sqlmodel import select

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from api.routes.customers import CustomerIdPath
from api.services import Services
from core.segments import refresh as segments
from store.db import session_scope
from store.tables import Customer, SegmentMembership

router = APIRouter(prefix="/customers", tags=["segments"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

SegmentPath = Annotated[str, Path(description="A manual segment of segments.yaml", pattern=r"^[a-z0-9_]{1,64}$")]


class MembershipOut(BaseModel):
    customer_id: str
    segment: str
    member: bool
    changed: bool  # false when the customer already was (or was not) a member
    segments: list[str]  # all of the customer's segments now


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such customer, or no such segment in segments.yaml"},
    409: {"description": "A rule segment: its members are computed from its rule"},
}


def _customer_segments(db: Any, customer_id: str) -> list[str] | None:
    with session_scope(db, readonly=True) as session:
        if session.get(Customer, customer_id) is None:
            return None
        return sorted(session.exec(select(SegmentMembership.segment)
                                   .where(SegmentMembership.customer_id == customer_id)).all())


async def _change(svc: Services, customer_id: str, segment: str, *, member: bool) -> MembershipOut:
    try:
        segments.check_manual(svc.catalog, segment)
    except segments.SegmentError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    except PermissionError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    if await asyncio.to_thread(_customer_segments, svc.db, customer_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")
    change = await segments.change_memberships(
        svc.router, customer_id, add=[segment] if member else [], remove=[] if member else [segment],
        key=f"api:{uuid.uuid4().hex}", remember=False, source="api")
    now_in = await asyncio.to_thread(_customer_segments, svc.db, customer_id) or []
    return MembershipOut(customer_id=customer_id, segment=segment, member=member,
                         changed=bool(change.added or change.removed), segments=now_in)


@router.put("/{customer_id}/segments/{segment}", response_model=MembershipOut, responses=_ERRORS)
async def add_to_segment(customer_id: CustomerIdPath, segment: SegmentPath, svc: ServicesDep) -> MembershipOut:
    """Add the customer to a manual segment. Joining announces `segment_entered` (which
    starts the journeys it triggers); adding a member again changes nothing."""
    return await _change(svc, customer_id, segment, member=True)


@router.delete("/{customer_id}/segments/{segment}", response_model=MembershipOut, responses=_ERRORS)
async def remove_from_segment(customer_id: CustomerIdPath, segment: SegmentPath,
                              svc: ServicesDep) -> MembershipOut:
    """Remove the customer from a manual segment; leaving announces `segment_exited`."""
    return await _change(svc, customer_id, segment, member=False)
