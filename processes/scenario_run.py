"""Run scenarios on one time-skipping server (the simulation machinery: the real workflow,
activities and event path, a throw-away SQLite database per scenario) and compare what
happened with what each scenario expects."""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from language.validate import load_catalog
from messaging.senders.console import ConsoleSender
from processes.scenarios import ExpectedText, LoadedScenario, expected_instant
from processes.simulate import Simulation, _test_server, explained, local_time
from processes.temporal import quiet_runtime
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Coupon, Link

# What a reader of a timeline cares about: the texts, why they waited, how it ended.
SHOWN_ACTIONS = ("sms", "email", "deferred", "exit")
SLACK = timedelta(minutes=1)  # expected times are to the minute


@dataclass(frozen=True)
class Row:
    at: str  # UTC, ISO
    local: str
    step: str
    action: str
    text: str = ""  # the text (links and codes named), an email's subject, a deferral's reason, an exit's name
    body: str = ""  # an email's plain-text part (links and codes named)

    def line(self) -> str:
        return f"{self.local} ({self.at}) {self.step} {self.action}: {self.text}".rstrip()


@dataclass
class Outcome:
    scenario: LoadedScenario
    outcome: str
    rows: list[Row]
    not_entered_reason: str | None = None
    error: str | None = None  # the journey or scenario could not run at all
    zone: str = "UTC"  # the customer's (or the default) time zone: local times are in it

    @property
    def texts(self) -> list[Row]:
        return [row for row in self.rows if row.action == "sms"]

    @property
    def emails(self) -> list[Row]:
        return [row for row in self.rows if row.action == "email"]


@dataclass
class Verdict:
    outcome: Outcome
    diff: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.diff


async def run_scenarios(config_dir: Path, scenarios: Sequence[LoadedScenario]) -> list[Outcome]:
    """Every scenario against the journeys in ``config_dir``, on one server, in order."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=_test_server(),
                                                       data_converter=pydantic_data_converter,
                                                       runtime=quiet_runtime())
    try:
        return [await run_one(env, config_dir, scenario) for scenario in scenarios]
    finally:
        await env.shutdown()


async def run_one(env: WorkflowEnvironment, config_dir: Path, loaded: LoadedScenario) -> Outcome:
    journey_file = config_dir / f"{loaded.journey}.yaml"
    if not journey_file.exists():
        return Outcome(loaded, "no_journey", [], error=f"no journey {loaded.journey} in {config_dir}")
    try:
        catalog = load_catalog(config_dir, [journey_file])  # that journey alone: nothing else starts
        pinned = catalog.journey(loaded.journey)
        customer, schedule = loaded.customer, loaded.schedule()
    except (ValueError, KeyError) as err:
        return Outcome(loaded, "invalid", [], error=str(err))
    zone = loaded.zone(catalog.settings.default_timezone)
    with tempfile.TemporaryDirectory(prefix="journeys-scenario-") as tmp:
        db = open_database(f"sqlite:///{tmp}/scenario.db")
        upgrade(db)
        try:
            async with Simulation(env, catalog, db, start=loaded.start,
                                  sender=ConsoleSender(stream=io.StringIO())) as sim:
                await sim.add_customer(customer)
                entry = await sim.enter_explained(pinned, customer.id, loaded.trigger_spec())
                delivered = [await sim.deliver(customer.id, item) for item in schedule]
                result = await sim.result(pinned.journey.id, customer.id) if entry.started else None
                report = sim.report(pinned, customer, result, delivered)
                report["deferrals"] = await sim.deferrals(pinned.journey.id, customer.id) if result else []
                report = explained(report, entry, sample=False, zone=zone)
                names = _names(db, customer.id)
        finally:
            db.dispose()
    rows = [_row(item, names, zone) for item in report["timeline"] if item["action"] in SHOWN_ACTIONS]
    return Outcome(loaded, report["outcome"], rows, report.get("not_entered_reason"), zone=zone)


def _names(db: Any, customer_id: str) -> dict[str, str]:
    """Tracked links and coupon codes are random: name them by what they stand for."""
    with session_scope(db, readonly=True) as session:
        links = {f"/l/{link.code}": f"<link {link.url}>" for link in
                 session.exec(select(Link).where(Link.customer_id == customer_id))}
        coupons = {coupon.code: f"<coupon {coupon.series}>" for coupon in
                   session.exec(select(Coupon).where(Coupon.customer_id == customer_id))}
    return {**links, **coupons}


_LINK = re.compile(r"\S*(/l/[A-Za-z0-9]+)")


def named(text: str, names: dict[str, str]) -> str:
    text = _LINK.sub(lambda found: names.get(found[1], found[0]), text)
    for code, name in names.items():
        if not code.startswith("/l/"):
            text = text.replace(code, name)
    return text


def _row(item: dict[str, Any], names: dict[str, str], zone: str) -> Row:
    body = ""
    if item["action"] in ("sms", "email"):
        status = item.get("status")
        text = named(item.get("subject" if item["action"] == "email" else "text") or "", names)
        if item["action"] == "email":
            body = named(item.get("text") or "", names)
        if status != "sent":
            text = f"[{status}{': ' + item['reason'] if item.get('reason') else ''}] {text}".strip()
    elif item["action"] == "deferred":
        text = f"{item['reason']}, until {local_time(item['until'], zone)}"
    else:
        text = str(item.get("outcome") or item.get("exit") or item.get("name") or "")
    # To the minute: the test server's clock drifts by the second or so real work takes.
    return Row(item["at"][:16] + "Z", item["local"], item.get("step") or "", item["action"], text, body)


# --- comparing ---------------------------------------------------------------------


def verdict(outcome: Outcome) -> Verdict:
    loaded = outcome.scenario
    expect = loaded.scenario.expect
    if outcome.error:
        return Verdict(outcome, [f"cannot run: {outcome.error}"])
    diff: list[str] = []
    if expect.outcome is not None and expect.outcome != outcome.outcome:
        diff.append(f"outcome: expected {expect.outcome}, got {outcome.outcome}"
                    + (f" ({outcome.not_entered_reason})" if outcome.not_entered_reason else ""))
    if expect.not_entered_reason is not None and expect.not_entered_reason != outcome.not_entered_reason:
        diff.append(f"not entered because: expected {expect.not_entered_reason!r}, "
                    f"got {outcome.not_entered_reason!r}")
    if expect.texts is not None:
        diff += _compared("texts", expect.texts, outcome.texts, outcome.zone)
    if expect.emails is not None:
        diff += _compared("emails", expect.emails, outcome.emails, outcome.zone)
    return Verdict(outcome, diff)


def _compared(label: str, expected: Sequence[Any], got: list[Row], zone: str) -> list[str]:
    lines, same = [], True
    for index in range(max(len(expected), len(got))):
        wanted = expected[index] if index < len(expected) else None
        actual = got[index] if index < len(got) else None
        if wanted is not None and actual is not None and _matches(wanted, actual, zone):
            lines.append(f"    {actual.line()}")
            continue
        same = False
        if wanted is not None:
            lines.append(f"  - {_describe(wanted)}")
        if actual is not None:
            lines.append(f"  + {actual.line()}")
    return [] if same else [f"{label} (- expected, + got):", *lines]


def _whole(wanted: Any) -> str | None:
    """The whole text an expectation names: a text's, or an email's subject."""
    return wanted.text if isinstance(wanted, ExpectedText) else wanted.subject


def _matches(wanted: Any, actual: Row, zone: str) -> bool:
    if wanted.step != actual.step:
        return False
    if wanted.at is not None and abs(expected_instant(wanted.at, zone) - _utc(actual.at)) >= SLACK:
        return False
    whole = _whole(wanted)
    if whole is not None and whole != actual.text:
        return False
    contains = [wanted.contains] if isinstance(wanted.contains, str) else wanted.contains or []
    return all(part in actual.text or part in actual.body for part in contains)


def _describe(wanted: Any) -> str:
    parts = [wanted.at or "(any time)", wanted.step, "sms:" if isinstance(wanted, ExpectedText) else "email:"]
    whole = _whole(wanted)
    if whole is not None:
        parts.append(whole)
    if wanted.contains is not None:
        parts.append(f"containing {wanted.contains!r}")
    return " ".join(parts)


def _utc(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", ":00+00:00")).astimezone(UTC)
