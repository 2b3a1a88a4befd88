"""Customer profiles and SMS and email consent; a person's data exported or erased."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, Field, model_validator
from sqlmodel import col, select

from api.deps import ServicesDep, require_token
from api.edge import EdgeRoute
from core.clock import utcnow
from core.customers import email_confirmation, email_consent
from core.customers.erasure import erase_customer
from core.customers.export import UnknownCustomer, export_customer
from core.customers.records import customer_view
from core.intake.profiles import ConsentError, ProfileChange, give_consent, upsert_customer
from core.journeys.stopping import TemporalRunStopper
from core.validation import no_nul, opaque_customer_id, require_timezone
from messaging.phone import InvalidPhoneNumber
from store.db import session_scope
from store.tables import ConsentRecord, Customer, Enrollment

router = APIRouter(prefix="/customers", tags=["customers"], dependencies=[Depends(require_token)],
                   route_class=EdgeRoute)

CustomerIdPath = Annotated[str, Path(description="Your customer id (opaque: not an email or phone)",
                                     pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def _zone(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/Stockholm")
    return value


class CleanText(BaseModel):
    """Text the databases can store: no NUL characters anywhere."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return no_nul(data, "a field")


class CustomerIn(CleanText):
    phone: str | None = Field(default=None, description="Any common format; stored as E.164",
                              examples=["+1 201 555 0123"])
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=16, examples=["sv-SE"])
    timezone: Annotated[str | None, AfterValidator(_zone)] = None
    birthday: date | None = None
    attributes: dict[str, Any] | None = None


class ConsentEvidence(BaseModel):
    status: str
    channel: str = "sms"
    source: str
    disclosure: str | None
    occurred_at: datetime


class ActiveJourney(BaseModel):
    journey: str
    version: str
    step: str | None
    entered_at: datetime


class CustomerOut(BaseModel):
    id: str
    phone: str | None
    phone_status: str
    first_name: str | None
    last_name: str | None
    email: str | None
    locale: str | None
    timezone: str | None
    birthday: date | None
    attributes: dict[str, Any]
    sms_consent: str
    email_consent: str
    consent_history: list[ConsentEvidence]
    points: int
    tier: str | None
    segments: list[str]
    orders_count: int
    total_spent: float
    last_purchase_at: datetime | None
    active_journeys: list[ActiveJourney]


class ConsentIn(CleanText):
    status: Literal["opted_in", "opted_out"]
    channel: Literal["sms", "email"] = Field(default="sms", description="Which consent: SMS (default) or email; "
                                             "they are kept apart")
    source: str = Field(min_length=1, max_length=64, examples=["checkout_form"])
    disclosure: str | None = Field(default=None, description="The exact text the customer agreed to (required "
                                   "to opt in: it is the evidence)")
    occurred_at: Annotated[datetime | None, AfterValidator(require_timezone)] = None


class ConsentOut(BaseModel):
    sms_consent: str | None = None  # the channel the request named
    email_consent: str | None = None


def _profile(db: Any, customer_id: str) -> CustomerOut:
    now = utcnow()
    with session_scope(db, readonly=True) as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")
        view = customer_view(session, customer, now)
        evidence = session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                                .order_by(col(ConsentRecord.occurred_at))).all()
        runs = session.exec(select(Enrollment).where(Enrollment.customer_id == customer_id,
                                                     Enrollment.status == "active")).all()
        return CustomerOut(
            **{k: view[k] for k in ("id", "first_name", "last_name", "email", "locale", "timezone", "birthday",
                                    "attributes", "sms_consent", "points", "tier", "segments", "orders_count",
                                    "total_spent", "last_purchase_at")},
            phone=customer.phone, phone_status=customer.phone_status, email_consent=customer.email_consent,
            consent_history=[ConsentEvidence(status=e.status, channel=e.channel, source=e.source,
                                             disclosure=e.disclosure, occurred_at=e.occurred_at) for e in evidence],
            active_journeys=[ActiveJourney(journey=r.journey_id, version=r.journey_version, step=r.current_step,
                                           entered_at=r.entered_at) for r in runs],
        )


@router.put("/{customer_id}", response_model=CustomerOut)
async def put_customer(customer_id: CustomerIdPath, body: CustomerIn, svc: ServicesDep) -> CustomerOut:
    """Create or update a profile. Fields left out keep their value."""
    _check_id(customer_id)
    change = ProfileChange(**body.model_dump(exclude_none=True))
    try:
        await upsert_customer(svc.router, customer_id, change)
    except InvalidPhoneNumber as err:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "phone"), "msg": str(err),
                                       "input": body.phone}]) from None
    return _profile(svc.db, customer_id)


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: CustomerIdPath, svc: ServicesDep) -> CustomerOut:
    """The profile with consent and its evidence, points, tier, segments and active journeys."""
    return _profile(svc.db, customer_id)


@router.get("/{customer_id}/export")
async def export_customer_data(customer_id: CustomerIdPath, svc: ServicesDep) -> dict[str, Any]:
    """Everything held about the customer, as one JSON document (access and portability):
    profile, consent evidence, messages, clicks, answers, events, points, coupons,
    segments, journeys and suppressions of their number. See docs/operations.md."""
    try:
        return await run_in_threadpool(export_customer, svc.db, customer_id)
    except UnknownCustomer as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None


class ErasureOut(BaseModel):
    customer_id: str
    erasure_id: int = Field(description="The audit record (table `erasures`)")
    requested_at: datetime
    completed_at: datetime | None = Field(description="Unset while a run could not be stopped: erase again")
    counts: dict[str, int] = Field(description="Rows erased or made anonymous per table, rows kept (`*_kept`) "
                                   "and runs stopped")
    runs_not_stopped: list[str] = Field(description="Workflow ids Temporal did not answer for (retry the erasure)")


@router.delete("/{customer_id}", response_model=ErasureOut)
async def delete_customer(customer_id: CustomerIdPath, svc: ServicesDep) -> ErasureOut:
    """Erase the customer (right to erasure): personal data removed or made anonymous in
    every table, active runs ended, the number's opt-out kept under a keyed hash, an audit
    record written. Erasing again is safe. See docs/operations.md."""
    try:
        report = await erase_customer(svc.db, TemporalRunStopper(svc.router.client), customer_id, source="api")
    except UnknownCustomer as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    return ErasureOut(customer_id=report.customer_id, erasure_id=report.erasure_id,
                      requested_at=report.requested_at, completed_at=report.completed_at, counts=report.counts,
                      runs_not_stopped=report.runs_not_stopped)


@router.post("/{customer_id}/consent", response_model=ConsentOut, response_model_exclude_none=True)
async def post_consent(customer_id: CustomerIdPath, body: ConsentIn, svc: ServicesDep) -> ConsentOut:
    """Record SMS consent (or, with `channel: email`, email consent) with its evidence. Under
    double opt-in, an SMS opt-in sends the confirmation text and the customer stays `pending`
    until they reply YES. Email has its own mode (settings.yaml `email: {opt_in}`): under
    double, an email opt-in sends a confirmation email and stays `pending` until its link is followed."""
    _check_id(customer_id)
    if body.status == "opted_in" and not body.disclosure:
        raise RequestValidationError([{"type": "missing", "loc": ("body", "disclosure"), "input": None,
                                       "msg": "an opt-in needs the disclosure text the customer agreed to"}])
    if body.channel == "email":
        settings = svc.catalog.settings
        try:
            email_state, pending = await run_in_threadpool(
                email_consent.give, svc.db, customer_id, body.status, source=body.source,
                disclosure=body.disclosure, at=body.occurred_at or utcnow(), double=settings.email.opt_in == "double")
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}") from None
        except email_consent.EmailConsentError as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
        if pending is not None and svc.email_sender is not None:  # double opt-in: the confirmation email
            await email_confirmation.confirm_by_email(svc.db, svc.email_sender, customer_id, pending,
                                                      base_url=settings.links.base_url, brand=settings.brand,
                                                      at=utcnow())
        return ConsentOut(email_consent=email_state)
    try:
        state = await give_consent(svc.router, svc.replies, customer_id, body.status, source=body.source,
                                   disclosure=body.disclosure, at=body.occurred_at)
    except ConsentError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return ConsentOut(sms_consent=state)


def _check_id(customer_id: str) -> None:
    try:
        opaque_customer_id(customer_id)
    except ValueError as err:
        raise RequestValidationError([{"type": "value_error", "loc": ("path", "customer_id"), "msg": str(err),
                                       "input": customer_id}]) from None
