"""POST /journeys/{journey_id}/enrollments: enter one customer or a batch by hand, with
an answer per customer (entered, or the exact reason not), as `journeys enroll` does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from api.limits import MAX_ENROLL
from core.journeys.enroll import enroll_customers
from core.validation import CustomerId

router = APIRouter(tags=["journeys"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

JourneyPath = Annotated[str, Path(description="A journey id", pattern=r"^[a-z0-9_]{1,64}$")]


class EnrollmentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId | None = None
    customers: list[CustomerId] | None = None

    @model_validator(mode="after")
    def one_of(self) -> EnrollmentsIn:
        if (self.customer_id is None) == (self.customers is None):
            raise ValueError("give either customer_id or customers")
        return self


class EnrollmentResult(BaseModel):
    customer_id: str
    entered: bool
    reason: str | None  # why not: "already in this journey", "not in audience", "unknown customer", ...
    run_id: str | None = None  # the workflow id, when entered


class EnrollmentsOut(BaseModel):
    results: list[EnrollmentResult]


def _parse(payload: Any) -> list[str]:
    """The ids, the batch size checked before anything else is looked at."""
    if isinstance(payload, dict) and isinstance(payload.get("customers"), list) \
            and len(payload["customers"]) > MAX_ENROLL:
        raise RequestValidationError([{"type": "too_long", "loc": ("body", "customers"),
                                       "input": len(payload["customers"]),
                                       "msg": f"at most {MAX_ENROLL} customers per request"}])
    try:
        body = EnrollmentsIn.model_validate(payload)
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
    return body.customers if body.customers is not None else [str(body.customer_id)]


@router.post("/journeys/{journey_id}/enrollments", response_model=EnrollmentsOut,
             description="Enter customers into a journey now (any trigger; `manual` journeys start only this way "
                         "or by `journeys enroll`). The audience and reentry rules apply; each customer gets an "
                         "answer, in input order: `entered`, or the `reason` not (`already in this journey`, "
                         "`not in audience`, `reentry window not over`, `reentry: never`, `unknown customer`, "
                         "...). A repeat while the run is active answers `already in this journey`.\n\n"
                         f"`{{\"customer_id\": \"c1\"}}` or `{{\"customers\": [\"c1\", ...]}}`, at most "
                         f"{MAX_ENROLL} (422 past it, before any work).",
             responses={404: {"description": "No such journey"}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": EnrollmentsIn.model_json_schema()}}}})
async def post_enrollments(journey_id: JourneyPath, svc: ServicesDep,
                           payload: Annotated[Any, Body()]) -> EnrollmentsOut:
    customer_ids = _parse(payload)
    try:
        pinned = svc.catalog.journey(journey_id)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no journey {journey_id!r}") from None
    results = await enroll_customers(svc.router.starter, pinned, customer_ids)
    return EnrollmentsOut(results=[EnrollmentResult(customer_id=r.customer_id, entered=r.entered, reason=r.reason,
                                                    run_id=r.run_id) for r in results])
