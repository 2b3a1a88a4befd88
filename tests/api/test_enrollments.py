"""POST /journeys/{journey_id}/enrollments through the real app, a simulation and both
databases: an answer per customer, in order, with the exact reason for a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.limits import MAX_ENROLL
from api.services import Services
from processes.simulate import CustomerSpec, Simulation
from store.db import session_scope
from store.tables import Customer, Enrollment
from tests.api.conftest import API_SETTINGS, AUTH, PUBLIC_URL, TOKEN
from tests.runtime.support import CountingSender, write_journeys

FLASH = """
id: flash
name: Flash
trigger: {manual: true}
audience: "customer.locale == 'en'"
reentry: 30d
steps:
  - wait: 1d
"""
PATH = "/journeys/flash/enrollments"


@pytest.fixture
async def http(tmp_path: Path, env, db) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {"flash": FLASH}, settings=API_SETTINGS)
    async with Simulation(env, catalog, db, sender=CountingSender()) as sim:
        for number, (customer_id, locale) in enumerate([("c1", "en"), ("c2", "en"), ("c-fr", "fr")]):
            await sim.add_customer(CustomerSpec(id=customer_id, locale=locale, phone=f"+1201555010{number}"))
        app = create_app(Services.build(catalog, db, sim.router, api_token=TOKEN, public_url=PUBLIC_URL))
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                        base_url=PUBLIC_URL) as client:
            yield client


def _enrollments(db) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with session_scope(db, readonly=True) as session:
        return sorted((e.customer_id, e.status) for e in session.exec(select(Enrollment)))


async def test_one_customer_then_a_repeat(http: httpx.AsyncClient, db) -> None:  # type: ignore[no-untyped-def]
    first = await http.post(PATH, json={"customer_id": "c1"}, headers=AUTH)
    assert first.status_code == 200, first.text
    assert first.json() == {"results": [{"customer_id": "c1", "entered": True, "reason": None,
                                         "run_id": "journey/flash/c1"}]}
    again = await http.post(PATH, json={"customer_id": "c1"}, headers=AUTH)
    assert again.json()["results"] == [{"customer_id": "c1", "entered": False, "reason": "already in this journey",
                                        "run_id": None}]
    assert _enrollments(db) == [("c1", "active")]  # the repeat made no second entry


async def test_a_batch_answers_each_customer_in_order(http: httpx.AsyncClient, db) -> None:  # type: ignore[no-untyped-def]
    await http.post(PATH, json={"customer_id": "c2"}, headers=AUTH)
    response = await http.post(PATH, json={"customers": ["c-fr", "c1", "nobody", "c2"]}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert [(r["customer_id"], r["entered"], r["reason"]) for r in response.json()["results"]] == [
        ("c-fr", False, "not in audience"), ("c1", True, None), ("nobody", False, "unknown customer"),
        ("c2", False, "already in this journey")]
    assert _enrollments(db) == [("c1", "active"), ("c2", "active")]
    with session_scope(db, readonly=True) as session:
        assert session.get(Customer, "nobody") is None  # an unknown id is reported, not created


async def test_bad_requests_are_refused_before_any_work(http: httpx.AsyncClient, db) -> None:  # type: ignore[no-untyped-def]
    too_many = await http.post(PATH, json={"customers": ["c1"] * (MAX_ENROLL + 1)}, headers=AUTH)
    assert too_many.status_code == 422
    assert f"at most {MAX_ENROLL} customers" in too_many.text
    bad_id = await http.post(PATH, json={"customers": ["c1", "+12015550123"]}, headers=AUTH)
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["loc"] == ["body", "customers", 1]
    both = await http.post(PATH, json={"customer_id": "c1", "customers": ["c2"]}, headers=AUTH)
    assert both.status_code == 422
    unknown = await http.post("/journeys/nope/enrollments", json={"customer_id": "c1"}, headers=AUTH)
    assert unknown.status_code == 404
    assert "no journey 'nope'" in unknown.text
    assert (await http.post(PATH, json={"customer_id": "c1"})).status_code == 401
    assert (await http.post(PATH, json={"customer_id": "c1"},
                            headers={"Authorization": "Bearer wrong"})).status_code == 403
    assert _enrollments(db) == []
