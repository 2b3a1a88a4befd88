"""Record the workflow histories that tests/replay/test_replay.py replays.

    .venv/bin/python -m tests.replay.record            # every scenario
    .venv/bin/python -m tests.replay.record welcome    # the scenarios whose name starts so

Each scenario is a real run on the time-skipping server, like `journeys simulate`: the
real workflows and activities, a throw-away SQLite database, the shipped journeys/. The
finished run's history goes to histories/<journey>-<path>.json.

When to record: for a new journey, a new path worth guarding, or a new system workflow.
Never re-record to make a failing replay pass: a failure means runs in flight would break
on the changed code. Guard the change with `workflow.patched(...)` instead, and record a
new history next to the old ones (the old ones must keep replaying).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.journeys.controls import apply_control
from core.sms.replies import ReplySender
from language.catalog import Catalog
from language.validate import load_catalog
from processes.simulate import CustomerSpec, Simulation, parse_event_spec
from processes.temporal import quiet_runtime
from store.db import open_database, session_scope
from store.migrate import upgrade
from store.tables import Email, Message
from tests.replay import fakes
from workflows.contracts import JOURNEY_TASK_QUEUE
from workflows.fanout import FanoutInput, JourneyFanout
from workflows.loyalty_maintenance import LoyaltyMaintenance, LoyaltyMaintenanceInput
from workflows.outbox import SWEEPER_ID, EventSweep, EventSweeper, SweeperInput, SweepLoop
from workflows.reply import reply_workflow_id
from workflows.retention import Retention, RetentionInput
from workflows.segment_refresh import SegmentRefreshInput, SegmentRefreshWorkflow
from workflows.steps.branching import assign_variant

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "journeys"
HISTORIES = Path(__file__).resolve().parent / "histories"
TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Fixed moments (never today), as in tests/journeys: New York is the default time zone.
MONDAY_3PM = utc(2026, 3, 2, 15)  # 10:00 in New York: outside quiet hours
MONDAY_930PM = utc(2026, 3, 3, 2, 30)  # 21:30 in New York: quiet hours
MONDAY_830PM = utc(2026, 3, 3, 1, 30)  # 20:30 in New York: a reminder an hour later falls in quiet hours
MONDAY_2AM = utc(2026, 3, 2, 7)  # 02:00 in New York: the nightly batch
FRIDAY_10AM = utc(2026, 3, 6, 15)  # 10:00 in New York: the vip_flash_sale broadcast

RETURNING = {"orders": [{"at": "-90d", "amount": 60}]}
LAPSED = {"orders": [{"at": "-30d", "amount": 50}]}
VIP = {"points": 800, "segments": ["vip"]}
REGULAR = {"orders": [{"at": "-89d", "amount": 40}, {"at": "-59d", "amount": 35}, {"at": "-29d", "amount": 45}],
           "segments": ["due_to_reorder"]}
CART_A = 'cart_abandoned {"cart_id": "A", "cart_url": "https://nordicshoes.example/cart/A"}'


@dataclass
class Scenario:
    """One customer through one shipped journey."""

    journey: str
    path: str
    outcome: str  # what the run must end with, so a history is of the path its name says
    customer: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None
    events: list[str] = field(default_factory=list)
    start: datetime = MONDAY_3PM
    customer_id: str = fakes.CUSTOMER_ID

    @property
    def name(self) -> str:
        return f"{self.journey}-{self.path}"


def vip_in(variant: str) -> str:
    """A fake customer id the flash_offer split puts in `variant` (the assignment is a stable hash)."""
    variants = load_catalog(SHIPPED).journey("vip_flash_sale").journey.steps[0].split.variants  # type: ignore[union-attr]
    return next(f"replay-vip-{n}" for n in range(1000)
                if assign_variant("vip_flash_sale", "flash_offer", f"replay-vip-{n}", variants).name == variant)


SCENARIOS = [
    # welcome: sends, a 2-day timer, a wait_for satisfied by a purchase signal, set, ask + reply.
    Scenario("welcome", "first_order_high_score", "completed",
             events=['purchase@+5d {"amount": 80}', "reply:first_order_feedback@+8d2h 5"]),
    Scenario("welcome", "first_order_low_score_reprompt", "completed",
             events=['purchase@+5d {"amount": 80}', "reply:first_order_feedback@+8d1h meh",
                     "reply:first_order_feedback@+8d2h 2"]),
    Scenario("welcome", "no_first_order", "no_first_order"),
    Scenario("welcome", "existing_customer", "existing_customer", customer={"orders": [{"at": "-40d", "amount": 40}]}),
    Scenario("welcome", "stop", "exited:opted_out", events=["stop@+1d"]),
    # Opted in at 21:30: the first send is deferred to 08:00 (a quiet-hours wait).
    Scenario("welcome", "quiet_hours_then_stop", "exited:opted_out", start=MONDAY_930PM, events=["stop@+3d"]),
    # winback: survey, contest, coupon, sunset; a click signal; a purchase exit mid-wait; STOP.
    Scenario("winback", "no_click_sunset", "completed", customer=LAPSED),
    Scenario("winback", "survey_click", "completed", customer=LAPSED, events=["click:survey@+2d"]),
    Scenario("winback", "purchase_exit", "exited:purchase", customer=LAPSED, events=['purchase@+35d {"amount": 59}']),
    Scenario("winback", "stop", "completed", customer=LAPSED, events=["stop@+10d"]),
    # abandoned_cart: the reminder; a purchase exit during the wait_for; a quiet-hours deferral...
    Scenario("abandoned_cart", "reminder", "completed", trigger=CART_A),
    Scenario("abandoned_cart", "purchase_exit", "exited:purchase", trigger=CART_A,
             events=['purchase@+40m {"cart_id": "A", "amount": 129}']),
    Scenario("abandoned_cart", "other_cart_purchase", "completed", trigger=CART_A,
             events=['purchase@+40m {"cart_id": "B", "amount": 40}']),
    Scenario("abandoned_cart", "quiet_hours", "completed", trigger=CART_A, start=MONDAY_830PM),
    # ...the email a day after the text (the reminder above: the customer has an address), none after a click.
    Scenario("abandoned_cart", "clicked_no_email", "completed", trigger=CART_A, events=["click:reminder@+3h"]),
    # A keyed run (run_key: the cart id): cart B left and bought beside it, A reminded.
    Scenario("abandoned_cart", "keyed_two_carts", "completed", trigger=CART_A,
             events=['cart_abandoned@+10m {"cart_id": "B"}', 'purchase@+20m {"cart_id": "B", "amount": 40}']),
    # post_purchase: ask with a reply, a low score (segments, transactional send), no reply.
    Scenario("post_purchase", "high_score", "completed", customer=RETURNING, trigger='purchase {"amount": 120}',
             events=["reply:rating@+3d2h 5"]),
    Scenario("post_purchase", "low_score", "completed", customer=RETURNING, trigger='purchase {"amount": 120}',
             events=["reply:rating@+3d2h 2"]),
    Scenario("post_purchase", "no_reply", "completed", customer=RETURNING, trigger='purchase {"amount": 120}'),
    Scenario("post_purchase", "asked_in_welcome", "asked_in_welcome", trigger='purchase {"amount": 120}',
             customer={"attributes": {"first_order_feedback": "asked"}}),
    # birthday: the choose branches by tier; a customer without consent (skipped send).
    Scenario("birthday", "silver", "completed", customer={"points": 100, "birthday": "1990-03-02"}),
    Scenario("birthday", "platinum", "completed", customer={"points": 2500, "birthday": "1990-03-02"}),
    Scenario("birthday", "no_consent", "completed", customer={"sms_consent": "none", "birthday": "1990-03-02"}),
    # points_expiry: a wait until 11:00 local (an activity computes the moment), then the if.
    Scenario("points_expiry", "reminder", "completed", customer={"points": 1250}, start=MONDAY_2AM,
             trigger='points_expiring {"points": 150, "expires_at": "2026-03-16"}'),
    Scenario("points_expiry", "stockholm", "completed", customer={"points": 300, "timezone": "Europe/Stockholm"},
             start=MONDAY_2AM, trigger='points_expiring {"expires_at": "2026-03-16T12:00:00Z"}'),
    # tier_upgrade: one choose branch each.
    Scenario("tier_upgrade", "gold", "completed", trigger='tier_changed {"from": "silver", "to": "gold"}'),
    Scenario("tier_upgrade", "platinum", "completed", trigger='tier_changed {"from": "gold", "to": "platinum"}'),
    # vip_flash_sale: the split, one customer per variant.
    *(Scenario("vip_flash_sale", variant, "completed", customer=VIP, start=FRIDAY_10AM, customer_id=vip_in(variant))
      for variant in ("early_access", "early_access_extra", "holdout")),
    # replenishment: the reminder, and a reorder ending it (its goal) mid-wait.
    Scenario("replenishment", "reminder", "completed", customer=REGULAR),
    Scenario("replenishment", "purchase_exit", "exited:purchase", customer=REGULAR,
             events=['purchase@+2d {"amount": 50}']),
]


# Paths of language features no shipped journey uses yet, on a journey of their own next to
# the shipped ones (histories/<journey>-<path>.json as for the others).
EXTRA_JOURNEYS = {"channels": """
id: channels
name: Text or email (recorded for replay)
trigger: {event: cart_abandoned}
steps:
  - id: nudge
    send_sms: {text: "Your cart is waiting: {{ link('https://nordicshoes.example/cart') }}"}
    channel: sms_else_email
    email: {subject: "Your cart", text: "Your cart is waiting: {{ link('https://nordicshoes.example/cart') }}"}
  - wait: 1d
  - id: nudge_again
    send_sms: {text: "Still there: {{ link('https://nordicshoes.example/cart') }}"}
    channel: preferred
    email: {subject: "Still there", text: "Still there: {{ link('https://nordicshoes.example/cart') }}"}
"""}
EXTRA_SCENARIOS = [
    # No text consent: the text is skipped (no_consent) and the email goes instead (the
    # send-channel patch); then `preferred` asks for the channel (email: the only opt-in).
    Scenario("channels", "email_fallback", "completed", customer={"sms_consent": "none"}, trigger=CART_A),
]


def with_extra_journeys(root: Path) -> Catalog:
    """The shipped journeys and the extra ones, in a copy under ``root``."""
    shutil.copytree(SHIPPED, root, dirs_exist_ok=True)
    for name, text in EXTRA_JOURNEYS.items():
        (root / f"{name}.yaml").write_text(text.lstrip())
    return load_catalog(root)


def customer(customer_id: str, **fields: Any) -> CustomerSpec:
    return CustomerSpec(id=customer_id, first_name=fakes.FIRST_NAME, last_name=fakes.LAST_NAME, email=fakes.EMAIL,
                        phone=fakes.PHONE, **fields)


async def record_journey(sim: Simulation, scenario: Scenario) -> WorkflowHistory:
    await sim.add_customer(customer(scenario.customer_id, **scenario.customer))
    pinned = sim.catalog.journey(scenario.journey)
    assert await sim.enter(pinned, scenario.customer_id, scenario.trigger), f"{scenario.name}: not entered"
    for spec in scenario.events:
        await sim.deliver(scenario.customer_id, parse_event_spec(spec))
    result = await sim.result(scenario.journey, scenario.customer_id)
    assert result.outcome == scenario.outcome, f"{scenario.name}: ended {result.outcome}, not {scenario.outcome}"
    run_id = await sim.run_id(scenario.journey, scenario.customer_id)
    return await sim.env.client.get_workflow_handle(run_id).fetch_history()


async def finished(client: Client, workflow: Any, arg: Any, workflow_id: str,
                   check: Callable[[Any], bool]) -> WorkflowHistory:
    """Run a system workflow to its end; `check` says its result is the round meant."""
    handle = await client.start_workflow(workflow, arg, id=workflow_id, task_queue=JOURNEY_TASK_QUEUE)
    result = await handle.result()
    assert check(result), f"{workflow_id}: unexpected result {result!r}"
    return await handle.fetch_history()


# --- the system workflows: each with a few customers, so they do more than one round ---


async def record_fanout(sim: Simulation) -> WorkflowHistory:
    """vip_flash_sale's Friday firing: page by page (page size 1), a rate-limit timer between."""
    for n in (1, 2):
        await sim.add_customer(customer(f"replay-fanout-{n}", **VIP))
    fire = FanoutInput(journey_id="vip_flash_sale", moment=FRIDAY_10AM, per_second=10, page_size=1)
    return await finished(sim.env.client, JourneyFanout.run, fire, "replay-fanout",
                          lambda result: result.started == 2)


async def record_loyalty(sim: Simulation) -> WorkflowHistory:
    """The daily loyalty job over three customers, two a page; their points expire within
    the reminder's 14 days. (Purchases, not CustomerSpec.points: its ledger key is one for
    all customers, so only the first would get points.)"""
    for n in (1, 2, 3):
        await sim.add_customer(customer(f"replay-loyalty-{n}", orders=[{"at": "-355d", "amount": 100 * n}]))
    job = LoyaltyMaintenanceInput(moment=MONDAY_3PM + timedelta(days=1), page_size=2)
    return await finished(sim.env.client, LoyaltyMaintenance.run, job, "replay-loyalty",
                          lambda result: (result.customers, result.reminders) == (3, 3))


async def record_sweep(sim: Simulation) -> WorkflowHistory:
    return await finished(sim.env.client, EventSweep.run, None, "replay-sweep", lambda swept: swept == 0)


async def record_sweeper(sim: Simulation) -> WorkflowHistory:
    """The long-lived sweeper's first run: two short rounds, then continue-as-new."""
    client = sim.env.client
    sweeper = SweeperInput(loop=SweepLoop(every_seconds=0.1, for_seconds=0.2), rounds_per_run=2)
    handle = await client.start_workflow(EventSweeper.run, sweeper, id=SWEEPER_ID, task_queue=JOURNEY_TASK_QUEUE)
    first = client.get_workflow_handle(SWEEPER_ID, run_id=handle.result_run_id)
    while (await client.get_workflow_handle(SWEEPER_ID).describe()).run_id == handle.result_run_id:
        await asyncio.sleep(0.1)
    history = await first.fetch_history()
    await client.get_workflow_handle(SWEEPER_ID).terminate("recorded")
    return history


async def record_reply(sim: Simulation) -> WorkflowHistory:
    """A HELP answer through the Reply workflow (the number stays in the database)."""
    await sim.add_customer(customer("replay-reply"))
    replies = ReplySender(sim.db, sim.env.client, sim.catalog.settings)
    row = await replies.send("help", phone=fakes.PHONE, customer_id="replay-reply", key="replay-help", at=sim.clock)
    assert row.status == "sent", row.status
    return await sim.env.client.get_workflow_handle(reply_workflow_id(row.key)).fetch_history()


async def record_segments(sim: Simulation) -> WorkflowHistory:
    """A refresh in which a customer lapses (and so enters winback)."""
    await sim.add_customer(customer("replay-segments-1", **LAPSED))
    refresh = SegmentRefreshInput(clock_offset_seconds=sim.router.starter.clock_offset_seconds, simulated=True)
    return await finished(sim.env.client, SegmentRefreshWorkflow.run, refresh, "replay-segments",
                          lambda report: report.started == 1)


async def record_retention(sim: Simulation) -> WorkflowHistory:
    """The daily retention job over three old reply texts, two a batch and one batch an
    activity call (budget 0), so the workflow goes on from a cursor."""
    old = MONDAY_3PM - timedelta(days=800)
    with session_scope(sim.db) as session:
        for n in (1, 2, 3):
            session.add(Message(id=f"replay-retention-{n}", key=f"reply:help:replay-{n}", customer_id=f"replay-{n}",
                                purpose="reply", body="HELP", status="sent", created_at=old, sent_at=old))
    job = RetentionInput(moment=MONDAY_3PM, batch_size=2, budget_seconds=0)
    return await finished(sim.env.client, Retention.run, job, "replay-retention",
                          lambda result: result.changed["messages"] == 3)


async def record_retention_emails(sim: Simulation) -> WorkflowHistory:
    """The retention job since emails are a kind (the ``retention-emails`` patch): an old
    reply text and an old email body, each anonymised."""
    old = MONDAY_3PM - timedelta(days=800)
    with session_scope(sim.db) as session:
        session.add(Message(id="replay-retention-e1", key="reply:help:replay-e1", customer_id="replay-e1",
                            purpose="reply", body="HELP", status="sent", created_at=old, sent_at=old))
        session.add(Email(id="replay-retention-e2", key="replay-e2:email", customer_id="replay-e2",
                          subject="Hello", body="Hello", status="sent", created_at=old, sent_at=old))
    job = RetentionInput(moment=MONDAY_3PM, batch_size=2, budget_seconds=0)
    return await finished(sim.env.client, Retention.run, job, "replay-retention-emails",
                          lambda result: result.changed["messages"] == 1 and result.changed["emails"] == 1)


# --- an operator's controls on a running journey (journeys pause|resume|stop) ---


async def record_control_stop(sim: Simulation) -> WorkflowHistory:
    """welcome stopped after its first text: the run ends at once with outcome ``stopped``."""
    await sim.add_customer(customer(fakes.CUSTOMER_ID))
    assert await sim.enter(sim.catalog.journey("welcome"), fakes.CUSTOMER_ID)
    await sim.advance_to(sim.clock + timedelta(hours=1))  # the welcome text went out; waiting 2 days
    applied = await apply_control(sim.db, sim.env.client, "welcome", "stop", by="replay-recorder")
    assert applied.runs_signalled == 1, applied
    result = await sim.result("welcome", fakes.CUSTOMER_ID)
    assert result.outcome == "stopped", result.outcome
    return await sim.env.client.get_workflow_handle(await sim.run_id("welcome", fakes.CUSTOMER_ID)).fetch_history()


async def record_control_pause_resume(sim: Simulation) -> WorkflowHistory:
    """welcome paused before its second text: the text is held (deferred ``journey_paused``,
    past an hourly re-check), then sent on the resume, and the run goes on to its end."""
    await sim.add_customer(customer(fakes.CUSTOMER_ID))
    assert await sim.enter(sim.catalog.journey("welcome"), fakes.CUSTOMER_ID)
    await sim.advance_to(sim.clock + timedelta(hours=1))
    await apply_control(sim.db, sim.env.client, "welcome", "pause", by="replay-recorder")
    await sim.advance_to(sim.clock + timedelta(days=2, hours=2))  # points_intro due at +2d: held since
    with session_scope(sim.db, readonly=True) as session:
        held = session.exec(select(Message).where(Message.step_id == "points_intro")).one()
        assert (held.status, held.reason) == ("deferred", "journey_paused"), (held.status, held.reason)
    await apply_control(sim.db, sim.env.client, "welcome", "resume", by="replay-recorder")
    result = await sim.result("welcome", fakes.CUSTOMER_ID)
    assert result.outcome == "no_first_order", result.outcome
    sent = [e for e in result.timeline if e.action == "sms" and e.details.get("status") == "sent"]
    assert len(sent) == 2, result.timeline
    return await sim.env.client.get_workflow_handle(await sim.run_id("welcome", fakes.CUSTOMER_ID)).fetch_history()


CONTROLS: dict[str, tuple[datetime, Callable[[Simulation], Awaitable[WorkflowHistory]]]] = {
    "welcome-control_stop": (MONDAY_3PM, record_control_stop),
    "welcome-control_pause_resume": (MONDAY_3PM, record_control_pause_resume),
}


SYSTEM: dict[str, tuple[datetime, Callable[[Simulation], Awaitable[WorkflowHistory]]]] = {
    "system-fanout": (FRIDAY_10AM, record_fanout),
    "system-loyalty_maintenance": (MONDAY_3PM, record_loyalty),
    "system-event_sweep": (MONDAY_3PM, record_sweep),
    "system-event_sweeper": (MONDAY_3PM, record_sweeper),
    "system-reply": (MONDAY_3PM, record_reply),
    "system-segment_refresh": (MONDAY_3PM, record_segments),
    "system-retention": (MONDAY_3PM, record_retention),
    "system-retention_emails": (MONDAY_3PM, record_retention_emails),
}


async def on_fresh_server(catalog: Catalog, start: datetime,
                          work: Callable[[Simulation], Awaitable[WorkflowHistory]]) -> WorkflowHistory:
    """A time-skipping server and a database of their own: no run sees another's clock or data."""
    with tempfile.TemporaryDirectory(prefix="journeys-replay-") as tmp:
        db = open_database(f"sqlite:///{tmp}/record.db")
        upgrade(db)
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER),
                                                           data_converter=pydantic_data_converter,
                                                           runtime=quiet_runtime(),
                                                           identity="replay-recorder")  # not pid@host
        try:
            async with Simulation(env, catalog, db, start=start) as sim:
                return await work(sim)
        finally:
            await env.shutdown()
            db.dispose()


def write(name: str, history: WorkflowHistory) -> Path:
    HISTORIES.mkdir(exist_ok=True)
    path = HISTORIES / f"{name}.json"
    # Indented, so a re-recording shows as a readable diff.
    recorded = json.loads(history.to_json())
    path.write_text(json.dumps(recorded, indent=1) + "\n")
    text = fakes.readable(recorded)
    leaked = [value for value in fakes.PII if value in text]
    assert not leaked, f"{path.name}: customer data in the history: {leaked}"
    return path


async def main(prefixes: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="journeys-replay-extra-") as extra:
        await record(prefixes, load_catalog(SHIPPED), with_extra_journeys(Path(extra)))


async def record(prefixes: list[str], shipped: Catalog, extended: Catalog) -> None:
    jobs: dict[str, tuple[datetime, Callable[[Simulation], Awaitable[WorkflowHistory]]]] = {
        scenario.name: (scenario.start, lambda sim, s=scenario: record_journey(sim, s))
        for scenario in SCENARIOS + EXTRA_SCENARIOS}
    jobs.update(CONTROLS)
    jobs.update(SYSTEM)
    extra = {scenario.name for scenario in EXTRA_SCENARIOS}
    chosen = {name: job for name, job in jobs.items() if not prefixes or name.startswith(tuple(prefixes))}
    if not chosen:
        raise SystemExit(f"no scenario starts with {' or '.join(prefixes)}; known: {', '.join(jobs)}")
    for name, (start, work) in chosen.items():
        began = time.monotonic()
        path = write(name, await on_fresh_server(extended if name in extra else shipped, start, work))
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB  {time.monotonic() - began:.1f}s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
