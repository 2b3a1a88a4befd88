"""The one-shot commands behind the command line (`event`, `enroll`, `customer`,
`inbound`, `import`, `loyalty run`, `segments refresh`, `customers erase`) and `starter.py`: wire the
configured database, Temporal and SMS sender, then take the same paths as the HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import utcnow
from core.customers.erasure import ErasureReport, erase_customer
from core.customers.records import UnknownCustomer, missing_customers
from core.event import ExternalEventIn, RouteResult
from core.intake.importing import ImportReport, ImportStopped, csv_rows, import_customers
from core.intake.profiles import ProfileChange, give_consent, upsert_customer
from core.intake.text_to_join import TextToJoin
from core.journeys import controls
from core.journeys.enroll import PAGE, Enrolled, enroll_customers, segment_pages
from core.journeys.enrollment import Entry
from core.journeys.stopping import TemporalRunStopper
from core.loyalty.ledger import Account, load_account
from core.loyalty.maintenance import PageResult, run_daily
from core.retention import Report, run_all
from core.segments import refresh as segments
from core.sms.inbound import Inbound, InboundResult
from core.sms.redeem import SmsRedeemer
from messaging.phone import to_e164
from processes.settings import ServiceSettings
from processes.temporal import connect
from processes.wiring import Wiring, open_catalog, open_migrated_database, wire
from store.db import session_scope


@asynccontextmanager
async def wired(settings: ServiceSettings, journeys_dir: Path | None = None) -> AsyncIterator[Wiring]:
    wiring = await wire(settings, journeys_dir=journeys_dir)
    try:
        yield wiring
    finally:
        wiring.close()


async def send_event(settings: ServiceSettings, event_type: str, customer_id: str, properties: dict[str, Any], *,
                     event_id: str | None = None, occurred_at: datetime | None = None,
                     journeys_dir: Path | None = None) -> RouteResult:
    """Raises pydantic.ValidationError for a bad id, type or customer id (an id is held to
    the same rule as the API's: an opaque reference)."""
    event = ExternalEventIn(id=event_id or f"cli:{uuid.uuid4().hex}", type=event_type, customer_id=customer_id,
                            occurred_at=occurred_at or utcnow(), properties=properties)
    async with wired(settings, journeys_dir) as wiring:
        if wiring.router.catalog.settings.unknown_customers == "reject":
            with session_scope(wiring.router.db, readonly=True) as session:
                if missing_customers(session, [customer_id]):
                    raise UnknownCustomer(f"no customer {customer_id!r} (settings.yaml unknown_customers: reject)")
        return await wiring.router.route(event, source="cli")


async def enroll(settings: ServiceSettings, journey_id: str, customer_id: str, *,
                 journeys_dir: Path | None = None) -> Entry:
    """Raises KeyError for an unknown journey, ValueError for a bad customer id."""
    async with wired(settings, journeys_dir) as wiring:
        router = wiring.router
        return await router.starter.enter(router.catalog.journey(journey_id), customer_id,
                                          occasion=f"manual:{uuid.uuid4().hex}", check_trigger=False)


async def control_journey(settings: ServiceSettings, journey_id: str, command: str, *, version: str | None = None,
                          note: str | None = None, by: str = "cli",
                          journeys_dir: Path | None = None) -> controls.Applied:
    """Pause, resume, stop or drain a journey (or one version). Raises KeyError for an
    unknown journey or version."""
    async with wired(settings, journeys_dir) as wiring:
        db = wiring.router.db
        current = wiring.catalog.journeys.get(journey_id)
        if current is None and not controls.known_journey(db, journey_id, set(wiring.catalog.journeys)):
            raise KeyError(f"no journey {journey_id!r}")
        if version is not None and not controls.known_version(db, journey_id, version,
                                                              current.version if current else None):
            raise KeyError(f"no version {version!r} of journey {journey_id!r}")
        return await controls.apply_control(db, wiring.router.client, journey_id, command, version=version,
                                            by=by, note=note,
                                            scheduled=controls.is_scheduled(current.journey if current else None))


def list_controls(settings: ServiceSettings) -> list[Any]:
    """Every control in force (rows of journey_controls)."""
    return controls.list_controls(open_migrated_database(settings))


async def enroll_many(settings: ServiceSettings, journey_id: str, *, segment: str | None = None,
                      customer_ids: list[str] | None = None, on_page: Callable[[list[Enrolled]], None],
                      journeys_dir: Path | None = None) -> None:
    """Enter every current member of ``segment`` (or the given ids), a page at a time;
    ``on_page`` gets each page's answers. Raises KeyError for an unknown journey or segment."""
    async with wired(settings, journeys_dir) as wiring:
        pinned = wiring.catalog.journey(journey_id)
        if segment is not None:
            if segment not in wiring.catalog.segments.segments:
                known = ", ".join(sorted(wiring.catalog.segments.segments)) or "none"
                raise KeyError(f"no segment {segment!r} in segments.yaml (known: {known})")
            pages: Any = segment_pages(wiring.router.db, segment)
        else:
            ids = customer_ids or []
            pages = (ids[i:i + PAGE] for i in range(0, len(ids), PAGE))
        for page in pages:
            on_page(await enroll_customers(wiring.router.starter, pinned, page))


async def set_customer(settings: ServiceSettings, customer_id: str, change: ProfileChange, *,
                       journeys_dir: Path | None = None) -> str | None:
    """Save the profile, then consent through the same flow as the API (double opt-in
    when settings say so). Returns the customer's consent status if it was given."""
    async with wired(settings, journeys_dir) as wiring:
        consent, change.consent = change.consent, None
        await upsert_customer(wiring.router, customer_id, change)
        if consent is None:
            return None
        return await give_consent(wiring.router, wiring.replies, customer_id, consent, source=change.consent_source,
                                  disclosure=change.consent_text)


async def receive_sms(settings: ServiceSettings, phone: str, body: str, *,
                      journeys_dir: Path | None = None) -> InboundResult:
    """An inbound SMS as if it came through Twilio's webhook (for local runs)."""
    async with wired(settings, journeys_dir) as wiring:
        e164 = to_e164(phone, wiring.catalog.settings.default_country)
        inbound = Inbound(wiring.router, wiring.replies, TextToJoin(wiring.router, wiring.replies),
                          SmsRedeemer(wiring.router, wiring.replies))
        return await inbound.handle(body, at=utcnow(), message_sid=f"cli-{uuid.uuid4().hex}", phone=e164)


async def import_file(settings: ServiceSettings, path: Path, *, source: str = "import:cli",
                      journeys_dir: Path | None = None, progress: Callable[[int], None] | None = None) -> ImportReport:
    """`journeys import FILE`: check the file (scan_file) first, then call this. Raises
    ImportStopped when Temporal cannot be reached: imported opt-ins start journeys."""
    catalog = open_catalog(settings, journeys_dir)
    try:
        wiring = await wire(settings, catalog=catalog)
    except RuntimeError as err:
        raise ImportStopped(f"cannot reach Temporal at {settings.temporal_address} ({err}); nothing was imported. "
                            "Imported opt-ins start journeys, so an import needs the Temporal server: start "
                            "`journeys dev`, or set TEMPORAL_ADDRESS") from err
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return await import_customers(wiring.router, csv_rows(stream), source=source, progress=progress)
    finally:
        wiring.close()


async def run_loyalty_now(settings: ServiceSettings, journeys_dir: Path | None = None) -> PageResult:
    """``journeys loyalty run``: the whole job now, in this process, with the configured
    database and Temporal (journeys that the events trigger are started there)."""
    async with wired(settings, journeys_dir) as wiring:
        return await run_daily(wiring.router, utcnow())


async def refresh_segments(settings: ServiceSettings, names: list[str] | None, *, announce: bool = True,
                           journeys_dir: Path | None = None) -> segments.RefreshReport:
    async with wired(settings, journeys_dir) as wiring:
        return await segments.refresh(wiring.catalog, wiring.db, wiring.router, segments=names or None,
                                      announce=announce)


def run_retention_now(settings: ServiceSettings, *, dry_run: bool = False,
                      journeys_dir: Path | None = None, at: datetime | None = None) -> Report:
    """``journeys retention run``: the retention job now, in this process (no Temporal
    needed); ``dry_run`` counts what it would anonymise or delete and changes nothing."""
    catalog = open_catalog(settings, journeys_dir)
    db = open_migrated_database(settings)
    try:
        return run_all(db, catalog.settings.retention, at or utcnow(), dry_run=dry_run)
    finally:
        db.dispose()


def points_account(settings: ServiceSettings, customer_id: str, *, limit: int,
                   journeys_dir: Path | None = None) -> Account:
    """Raises UnknownCustomer."""
    catalog = open_catalog(settings, journeys_dir)
    db = open_migrated_database(settings)
    try:
        return load_account(db, customer_id, catalog.loyalty, utcnow(),
                            default_timezone=catalog.settings.default_timezone, limit=limit)
    finally:
        db.dispose()


class ErasureStopped(RuntimeError):
    """Erasure could not begin (Temporal unreachable): nothing was changed."""


async def erase(settings: ServiceSettings, customer_id: str) -> ErasureReport:
    """`journeys customers erase ID`. Raises UnknownCustomer, or ErasureStopped when
    Temporal cannot be reached (the customer's runs must be stopped with it)."""
    try:
        client = await connect(settings)
    except RuntimeError as err:
        raise ErasureStopped(f"cannot reach Temporal at {settings.temporal_address} ({err}); nothing was erased. "
                             "Erasure stops the customer's runs, so it needs the Temporal server: start "
                             "`journeys dev`, or set TEMPORAL_ADDRESS") from err
    db = open_migrated_database(settings)
    try:
        return await erase_customer(db, TemporalRunStopper(client), customer_id, source="cli")
    finally:
        db.dispose()
