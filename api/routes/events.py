"""POST /events: one event or a batch, through the engine's one event path."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from api.limits import MAX_BATCH, body_limit
from api.metrics import EVENT_SECONDS, EVENTS_RECEIVED, event_type_label
from core.customers.records import missing_customers
from core.event import ExternalEventIn
from store.db import session_scope

router = APIRouter(tags=["events"], dependencies=[Depends(require_token)], route_class=EdgeRoute)

_ONE = TypeAdapter(ExternalEventIn)
_BATCH = TypeAdapter(list[ExternalEventIn])


class EventResult(BaseModel):
    id: str
    duplicate: bool
    started: list[str]
    signalled: list[str]


class EventsAccepted(BaseModel):
    accepted: int
    duplicates: int
    results: list[EventResult]


def _parse(payload: Any) -> list[ExternalEventIn]:
    try:
        if isinstance(payload, list):
            if len(payload) > MAX_BATCH:
                raise RequestValidationError([{"type": "too_long", "loc": ("body",), "input": len(payload),
                                               "msg": f"at most {MAX_BATCH} events per request"}])
            return _BATCH.validate_python(payload)
        return [_ONE.validate_python(payload)]
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None


def _refuse_unknown(db: Any, events: list[ExternalEventIn], batch: bool) -> None:
    """settings.yaml ``unknown_customers: reject``: a 404 naming each event whose customer
    does not exist; nothing of the request is stored, so it can be fixed and sent again."""
    with session_scope(db, readonly=True) as session:
        missing = missing_customers(session, [event.customer_id for event in events])
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, [
            {"type": "unknown_customer", "loc": ["body", index, "customer_id"] if batch else ["body", "customer_id"],
             "msg": f"no customer {event.customer_id!r} (settings.yaml unknown_customers: reject): create the "
                    "customer first"}
            for index, event in enumerate(events) if event.customer_id in missing])


_EVENT_SCHEMA = _ONE.json_schema()  # inline: the body is parsed by hand, so FastAPI lists no component


_LIMIT = body_limit("/events")


@router.post("/events", status_code=status.HTTP_202_ACCEPTED, response_model=EventsAccepted,
             description="Accept events: each is stored once per `id` (a repeat is accepted and does nothing "
                         "again), updates the customer, signals running journeys and starts the journeys it "
                         f"triggers.\n\nOne event, or a batch of at most {MAX_BATCH} (422 past it); the body is at "
                         f"most {_LIMIT.text} (413 past it). An event's `id` is an opaque reference (letters, "
                         "digits and `_ . : -`, at most 128 characters, never an email or a phone number): it "
                         "reaches Temporal.",
             responses={404: {"description": "A customer that does not exist, with settings.yaml "
                                             "`unknown_customers: reject`: nothing was stored"}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "oneOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA, "maxItems": MAX_BATCH}]}}}}})
async def post_events(svc: ServicesDep, payload: Annotated[Any, Body()]) -> EventsAccepted:
    events = _parse(payload)
    if svc.catalog.settings.unknown_customers == "reject":
        await asyncio.to_thread(_refuse_unknown, svc.router.db, events, isinstance(payload, list))
    started = time.perf_counter()
    outcomes = await svc.router.route_many(events, source="api")
    each = (time.perf_counter() - started) / max(len(events), 1)  # a batch's quiet events are stored together
    results = []
    for event, outcome in zip(events, outcomes, strict=True):
        EVENT_SECONDS.observe(each)
        EVENTS_RECEIVED.labels(type=event_type_label(event.type, svc.catalog), duplicate=str(outcome.duplicate)).inc()
        results.append(EventResult(id=event.id, duplicate=outcome.duplicate, started=outcome.started,
                                   signalled=outcome.signalled))
    duplicates = sum(r.duplicate for r in results)
    return EventsAccepted(accepted=len(results) - duplicates, duplicates=duplicates, results=results)
