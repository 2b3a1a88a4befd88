"""settings.yaml `unknown_customers`: `create` (the default) makes a bare profile for an
event's unknown customer; `reject` answers 404 naming the field and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from store.db import session_scope
from store.tables import Customer, Event
from tests.api.conftest import API_SETTINGS, AUTH, WELCOME, Api, serve_api
from tests.runtime.support import write_journeys

PURCHASE = {"id": "order-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": 40}}


@pytest.fixture
async def rejecting(tmp_path: Path, env, db) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]

    catalog = write_journeys(tmp_path / "journeys", {"welcome": WELCOME},
                             settings=API_SETTINGS + "unknown_customers: reject\n")
    async with serve_api(env, db, catalog) as api:
        yield api


def stored(api: Api) -> tuple[list[str], list[str]]:
    with session_scope(api.run.sim.db) as session:
        return ([e.id for e in session.exec(select(Event))], [c.id for c in session.exec(select(Customer))])


async def test_by_default_an_unknown_customer_is_created(api: Api) -> None:
    response = await api.http.post("/events", json=PURCHASE, headers=AUTH)
    assert response.status_code == 202
    events, customers = stored(api)
    assert "order-1" in events and customers == ["c1"]


async def test_reject_answers_404_naming_the_field_and_stores_nothing(rejecting: Api) -> None:
    api = rejecting
    response = await api.http.post("/events", json=PURCHASE, headers=AUTH)
    assert response.status_code == 404
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "customer_id"] and error["type"] == "unknown_customer"
    assert "no customer 'c1'" in error["msg"]
    assert stored(api) == ([], [])

    await api.customer("c2", phone="+12015550123")
    batch = [{**PURCHASE, "id": "order-2", "customer_id": "c2"}, PURCHASE, {**PURCHASE, "id": "order-3"}]
    response = await api.http.post("/events", json=batch, headers=AUTH)
    assert response.status_code == 404
    assert [e["loc"] for e in response.json()["detail"]] == [["body", 1, "customer_id"], ["body", 2, "customer_id"]]
    assert stored(api) == ([], ["c2"])  # not even the known customer's event: the batch is sent again, fixed

    response = await api.http.post("/events", json=batch[:1], headers=AUTH)
    assert response.status_code == 202
    assert "order-2" in stored(api)[0]
