"""`journeys segments` (list, refresh) and the manual-segment API (PUT / DELETE
/customers/{id}/segments/{name}), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlmodel import select
from typer.testing import CliRunner

from api.app import create_app
from api.routes import segments as segment_routes
from api.services import Services
from cli import segments as segment_cli
from processes.dev import wait_for_server
from processes.simulate import CustomerSpec, Simulation
from store.db import session_scope
from store.tables import Customer, Enrollment, Event, SegmentMembership
from tests.e2e.conftest import dev_server  # noqa: F401  (fixture)
from tests.runtime.support import CountingSender, write_journeys
from tests.segments.test_refresh import catalog_with

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEGMENTS_YAML = """
refresh: 30m
segments:
  prospects: {rule: "customer.orders_count == 0"}
  vip: {rule: "customer.tier in ['gold', 'platinum']"}
  active: {manual: true, description: Re-engaged}
"""
# Quiet hours off: these tests run at real time, whatever the hour.
SETTINGS = """
brand: Nordic Shoes
default_timezone: America/New_York
quiet_hours: {start: "00:00", end: "00:00"}
"""
WELCOME_BACK = """
id: welcome_back
name: Welcome back
trigger: {segment_entered: active}
steps:
  - id: hello
    send_sms: {text: "Good to have you back"}
"""


def cli() -> typer.Typer:
    app = typer.Typer()
    segment_cli.register(app)
    return app


def _url(db: Any) -> str:
    return db.url.render_as_string(hide_password=False)


def test_segments_lists_kind_size_and_last_refresh(db, tmp_path: Path) -> None:
    journeys = tmp_path / "journeys"
    catalog_with(journeys, SEGMENTS_YAML)
    with session_scope(db) as session:
        session.add(Customer(id="c1"))
        session.add(Customer(id="c2", orders_count=3))
        session.add(SegmentMembership(customer_id="c2", segment="active", entered_at=_now()))
    env = {"JOURNEYS_DATABASE_URL": _url(db)}
    listed = CliRunner().invoke(cli(), ["segments", "--journeys", str(journeys), "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert (rows["prospects"]["kind"], rows["prospects"]["size"], rows["prospects"]["refreshed_at"]) == (
        "rule", 0, None)
    assert (rows["active"]["kind"], rows["active"]["size"]) == ("manual", 1)
    table = CliRunner().invoke(cli(), ["segments", "--journeys", str(journeys)], env=env)
    assert table.exit_code == 0 and "never" in table.output and "every 30m" in table.output


def test_segments_refresh_runs_against_the_database_and_temporal(db, tmp_path: Path, dev_server: str) -> None:  # noqa: F811
    asyncio.run(wait_for_server(dev_server))
    journeys = tmp_path / "journeys"
    catalog_with(journeys, SEGMENTS_YAML)
    with session_scope(db) as session:
        session.add(Customer(id="c1"))
        session.add(Customer(id="c2", orders_count=3, tier="gold"))
    env = {"JOURNEYS_DATABASE_URL": _url(db), "TEMPORAL_ADDRESS": dev_server, "JOURNEYS_DIR": str(journeys)}
    done = CliRunner().invoke(cli(), ["segments", "refresh", "--json"], env=env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert [(r["segment"], r["entered"], r["size"]) for r in report["segments"]] == [("prospects", 1, 1), ("vip", 1, 1)]
    assert report["events"] == 2
    one = CliRunner().invoke(cli(), ["segments", "refresh", "vip"], env=env)
    assert one.exit_code == 0 and "vip" in one.output and "prospects" not in one.output
    manual = CliRunner().invoke(cli(), ["segments", "refresh", "active"], env=env)
    assert manual.exit_code == 2 and "manual segment" in manual.output
    listed = CliRunner().invoke(cli(), ["segments", "--json"], env=env)
    assert [r["refreshed_at"] is not None for r in json.loads(listed.output)] == [True, True, False]


def _now() -> Any:
    from core.clock import utcnow

    return utcnow()


@pytest.fixture
async def http(tmp_path: Path, env, db) -> AsyncIterator[tuple[httpx.AsyncClient, Any, CountingSender]]:  # type: ignore[no-untyped-def]
    root = tmp_path / "journeys"
    catalog = write_journeys(root, {"welcome_back": WELCOME_BACK}, settings=SETTINGS)
    sender = CountingSender()
    async with Simulation(env, catalog, db, sender=sender) as sim:
        await sim.add_customer(CustomerSpec(id="c1"))
        services = Services.build(catalog, db, sim.router, api_token=TOKEN)
        app = create_app(services)
        app.include_router(segment_routes.router)
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                        base_url="http://test") as client:
            yield client, db, sender


async def test_manual_segments_change_through_the_api_and_start_journeys(http) -> None:
    client, db, sender = http
    assert (await client.put("/customers/c1/segments/active")).status_code == 401
    joined = await client.put("/customers/c1/segments/active", headers=AUTH)
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"customer_id": "c1", "segment": "active", "member": True, "changed": True,
                             "segments": ["active"]}
    again = await client.put("/customers/c1/segments/active", headers=AUTH)
    assert again.json()["changed"] is False
    for _ in range(100):  # the journey it started sends its text
        if sender.sent:
            break
        await asyncio.sleep(0.1)
    assert [m.body for m in sender.sent] == ["Good to have you back"]
    left = await client.delete("/customers/c1/segments/active", headers=AUTH)
    assert left.status_code == 200 and left.json()["segments"] == [] and left.json()["changed"] is True
    with session_scope(db, readonly=True) as session:
        kinds = sorted(e.type for e in session.exec(select(Event).where(Event.customer_id == "c1",
                                                                         Event.type.startswith("segment_"))))
        runs = session.exec(select(Enrollment).where(Enrollment.journey_id == "welcome_back")).all()
    assert kinds == ["segment_entered", "segment_exited"] and len(runs) == 1


@pytest.mark.parametrize(("method", "path", "code", "says"), [
    ("put", "/customers/c1/segments/vip", 409, "rule segment"),
    ("delete", "/customers/c1/segments/lapsed_30d", 409, "rule segment"),
    ("put", "/customers/c1/segments/nope", 404, "no segment 'nope'"),
    ("put", "/customers/ghost/segments/active", 404, "no customer 'ghost'"),
    ("put", "/customers/c1/segments/Bad-Name", 422, ""),
])
async def test_rule_and_unknown_segments_are_refused(http, method: str, path: str, code: int, says: str) -> None:
    client, db, _ = http
    response = await client.request(method.upper(), path, headers=AUTH)
    assert response.status_code == code and says in response.text
    with session_scope(db, readonly=True) as session:
        assert session.exec(select(SegmentMembership)).all() == []
