"""GET and POST /journeys/{journey_id}/controls through the real app, a simulation and
both databases: the token, unknown journeys and versions, bad states, and a stop that
reaches a running run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.services import Services
from processes.simulate import CustomerSpec, Simulation
from tests.api.conftest import API_SETTINGS, AUTH, PUBLIC_URL, TOKEN
from tests.runtime.support import CountingSender, write_journeys

FLASH = """
id: flash
name: Flash
trigger: {manual: true}
steps:
  - wait: 1d
"""
PATH = "/journeys/flash/controls"


@pytest.fixture
async def sim(tmp_path: Path, env, db) -> AsyncIterator[Simulation]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {"flash": FLASH}, settings=API_SETTINGS)
    async with Simulation(env, catalog, db, sender=CountingSender()) as sim:
        await sim.add_customer(CustomerSpec(id="c1", phone="+12015550100"))
        yield sim


@pytest.fixture
async def http(sim: Simulation, db) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    app = create_app(Services.build(sim.catalog, db, sim.router, api_token=TOKEN, public_url=PUBLIC_URL))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                    base_url=PUBLIC_URL) as client:
        yield client


async def test_stop_over_http_ends_the_run_and_is_listed(http: httpx.AsyncClient, sim: Simulation) -> None:
    assert (await http.get(PATH, headers=AUTH)).json() == []
    assert await sim.enter(sim.catalog.journey("flash"), "c1")
    response = await http.post(PATH, json={"state": "stopped", "note": "ticket 7"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"journey_id": "flash", "version": "*", "state": "stopped", "runs_signalled": 1,
                               "schedule": None}
    assert (await sim.result("flash", "c1")).outcome == "stopped"
    [row] = (await http.get(PATH, headers=AUTH)).json()
    assert (row["version"], row["state"], row["changed_by"], row["note"]) == ("*", "stopped", "api", "ticket 7")
    entry = await sim.enter_explained(sim.catalog.journey("flash"), "c1")
    assert (entry.started, entry.reason) == (False, "journey stopped")


async def test_refusals_name_what_is_wrong(http: httpx.AsyncClient, sim: Simulation) -> None:
    assert (await http.post(PATH, json={"state": "paused"})).status_code == 401
    assert (await http.get(PATH)).status_code == 401
    unknown = await http.post("/journeys/nope/controls", json={"state": "paused"}, headers=AUTH)
    assert unknown.status_code == 404 and "nope" in unknown.text
    assert (await http.get("/journeys/nope/controls", headers=AUTH)).status_code == 404
    version = await http.post(PATH, json={"state": "paused", "version": "abcdef123456"}, headers=AUTH)
    assert version.status_code == 404 and "abcdef123456" in version.text
    bad = await http.post(PATH, json={"state": "frozen"}, headers=AUTH)
    assert bad.status_code == 422 and "state" in bad.text
    extra = await http.post(PATH, json={"state": "paused", "when": "now"}, headers=AUTH)
    assert extra.status_code == 422 and "when" in extra.text
    assert (await http.get(PATH, headers=AUTH)).json() == []  # nothing was stored
    current = sim.catalog.journey("flash").version
    ok = await http.post(PATH, json={"state": "draining", "version": current}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["version"] == current
