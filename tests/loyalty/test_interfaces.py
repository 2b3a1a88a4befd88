"""What people and the worker see of the loyalty program: `journeys points`, `journeys
loyalty run`, GET /customers/{id}/points, and the LoyaltyMaintenance workflow with its
daily schedule."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.worker import Worker
from typer.testing import CliRunner

from activities.deps import Deps
from activities.loyalty import LoyaltyActivities
from api.routes import loyalty as loyalty_routes
from cli.main import app as cli_app
from core.clock import utcnow
from core.events.router import EventRouter
from core.loyalty.maintenance import loyalty_schedule, loyalty_schedules
from store.db import session_scope
from store.tables import Enrollment
from tests.loyalty.support import T0, customer, events, loyalty_catalog, make_customer, purchase, router_for
from tests.runtime.support import CountingSender
from workflows.loyalty_maintenance import LOYALTY_WORKFLOW, LoyaltyMaintenance, LoyaltyMaintenanceInput

TOKEN = "test-token"
runner = CliRunner()


def _url(db) -> str:  # type: ignore[no-untyped-def]
    return db.url.render_as_string(hide_password=False)


async def _history(router: EventRouter) -> None:
    """A customer with a purchase, a punch-card reward, a referral and points about to lapse."""
    now = utcnow()
    make_customer(router.db, "ref")
    from core.loyalty.ledger import ensure_referral_code

    code = ensure_referral_code(router.db, "ref")
    await purchase(router, "c1", 120, now - timedelta(days=360), event_id="o1", referral_code=code)
    for n in range(2, 6):
        await purchase(router, "c1", 100, now - timedelta(days=10 - n), event_id=f"o{n}")


# --- journeys points ------------------------------------------------------------------------------


@pytest.fixture
def cli_env(journeys_dir: Path, db, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    loyalty_catalog(journeys_dir)
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", _url(db))
    monkeypatch.setenv("JOURNEYS_DIR", str(journeys_dir))
    monkeypatch.setenv("COLUMNS", "200")
    return journeys_dir


async def test_points_command_shows_balance_tier_expiry_referral_and_history(cli_env: Path, db) -> None:
    await _history(router_for(loyalty_catalog(cli_env), db))
    result = await asyncio.to_thread(runner.invoke, cli_app, ["points", "c1"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "balance:          720 points" in out  # 120 + 100 (referee) + 4 x 100 + 100 (punch card)
    assert "tier:             gold (1,280 more points earned to reach platinum)" in out
    assert "earned 12 months: 720 points" in out
    assert "next expiry:      220 points on" in out  # the first purchase and the referral bonus, in 5 days
    code = customer(db, "c1").referral_code
    assert code and f"referral code:    {code}" in out  # made on first need
    assert "ledger, newest first (7 of 7)" in out
    for reason in ("purchase", "punch card: purchase #5", "referral: welcome (referred by ref)"):
        assert reason in out
    assert "+100" in out and "+120" in out


async def test_points_command_json_and_unknown_customer(cli_env: Path, db) -> None:
    await _history(router_for(loyalty_catalog(cli_env), db))
    result = await asyncio.to_thread(runner.invoke, cli_app, ["points", "c1", "--json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["balance"] == 720 and data["tier"] == "gold" and data["earned_last_12_months"] == 720
    assert data["next_tier"] == "platinum" and data["points_to_next_tier"] == 1280
    assert data["next_expiry_points"] == 220
    assert len(data["history"]) == 2 and data["history_total"] == 7
    assert data["history"][0]["reason"] == "punch card: purchase #5"  # newest first
    missing = await asyncio.to_thread(runner.invoke, cli_app, ["points", "nobody"])
    assert missing.exit_code == 1 and "no customer 'nobody'" in missing.output


# --- GET /customers/{id}/points -------------------------------------------------------------------


@pytest.fixture
async def http(journeys_dir: Path, db):  # type: ignore[no-untyped-def]
    catalog = loyalty_catalog(journeys_dir)
    app = FastAPI()
    app.include_router(loyalty_routes.router)
    app.state.services = SimpleNamespace(catalog=catalog, db=db, api_token=TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, router_for(catalog, db)


async def test_points_api(http, db) -> None:  # type: ignore[no-untyped-def]
    client, router = http
    await _history(router)
    assert (await client.get("/customers/c1/points")).status_code == 401
    assert (await client.get("/customers/c1/points", headers={"Authorization": "Bearer no"})).status_code == 403
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.get("/customers/c1/points", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("customer_id", "balance", "tier", "earned_last_12_months", "next_tier",
                                 "points_to_next_tier", "history_total")} == {
        "customer_id": "c1", "balance": 720, "tier": "gold", "earned_last_12_months": 720,
        "next_tier": "platinum", "points_to_next_tier": 1280, "history_total": 7}
    assert body["next_expiry"]["points"] == 220
    assert body["referral_code"] == customer(db, "c1").referral_code and len(body["referral_code"]) == 8
    assert [(e["points"], e["source"]) for e in body["history"][-2:]] == [(100, "referral"), (120, "purchase")]
    assert body["history"][-1]["expired"] is False and body["history"][-1]["expires_at"]
    again = (await client.get("/customers/c1/points?limit=1", headers=auth)).json()
    assert again["referral_code"] == body["referral_code"] and len(again["history"]) == 1
    assert (await client.get("/customers/nobody/points", headers=auth)).status_code == 404
    assert (await client.get("/customers/c1/points?limit=0", headers=auth)).status_code == 422


# --- journeys loyalty run ---------------------------------------------------------------------------


async def test_loyalty_run_command_runs_the_job_now(cli_env: Path, db, env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    router = router_for(loyalty_catalog(cli_env), db)
    now = utcnow()
    await purchase(router, "soon", 600, now - timedelta(days=360), event_id="o1")  # lapses in 5 days
    await purchase(router, "old", 600, now - timedelta(days=400), event_id="o2")  # lapsed, out of the window
    result = await asyncio.to_thread(runner.invoke, cli_app, ["loyalty", "run"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("2 customers with points looked at: 1 refreshed, 1 tier change(s), "
                                     "1 points_expiring reminder(s)")
    assert (customer(db, "old").points, customer(db, "old").tier) == (0, "silver")
    assert [e.properties["points"] for e in events(db, "points_expiring", "soon")] == [600]
    again = await asyncio.to_thread(runner.invoke, cli_app, ["loyalty", "run"])
    assert "0 refreshed, 0 tier change(s), 0 points_expiring reminder(s)" in again.output


# --- the workflow and its schedule ------------------------------------------------------------------

REMIND = """
id: remind
name: Remind
trigger: {event: points_expiring}
steps:
  - wait: 1d
"""


async def test_the_maintenance_workflow_runs_the_job_page_by_page(journeys_dir: Path, db, env) -> None:
    catalog = loyalty_catalog(journeys_dir, journeys={"remind": REMIND})
    router = EventRouter(catalog, db, env.client)
    for n in range(3):
        await purchase(router, f"c{n}", 600, T0, event_id=f"o{n}")
    deps = Deps(catalog=catalog, db=db, sender=CountingSender(), router=router)
    queue = f"loyalty-test-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[LoyaltyMaintenance],
                      activities=[LoyaltyActivities(deps).maintain_page]):
        moment = T0 + timedelta(days=360)
        result = await env.client.execute_workflow(
            LoyaltyMaintenance.run, LoyaltyMaintenanceInput(moment=moment, page_size=2),
            id=f"loyalty-test-{uuid.uuid4().hex[:8]}", task_queue=queue)
    assert (result.moment, result.customers, result.reminders) == (moment, 3, 3)
    assert len(events(db, "points_expiring")) == 3
    with session_scope(db) as session:  # the events went the one event path: journeys started
        runs = session.exec(Enrollment.__table__.select().where(Enrollment.journey_id == "remind")).all()
    assert len(runs) == 3


def test_the_daily_schedule(journeys_dir: Path) -> None:
    catalog = loyalty_catalog(journeys_dir)
    schedule_id, schedule = loyalty_schedule(catalog)
    assert schedule_id == "loyalty-daily" and list(loyalty_schedules(catalog)) == ["loyalty-daily"]
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == (LOYALTY_WORKFLOW, "loyalty-daily", "journeys")
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.spec.cron_expressions == ["0 3 * * *"]
    assert schedule.spec.time_zone_name == "America/New_York"
