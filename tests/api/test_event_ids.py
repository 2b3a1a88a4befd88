"""Event ids from outside are opaque references: an id becomes a signal payload and an
event reference in Temporal, which is never encrypted, so it may not carry an email or a
phone number. Follow-up ids the engine builds from a valid id stay valid."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlmodel import select

from core.event import ExternalEventIn, follow_up_id
from core.validation import opaque_event_id
from store.db import session_scope
from store.tables import Event
from tests.api.conftest import AUTH, Api

PURCHASE = {"id": "order-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": 40}}


@pytest.mark.parametrize("event_id", [
    "order:ana@example.com:+12015550123", "+12015550123", "order 1001", "order:(201) 555-0123",
    "order:201-555-0123", "201.555.0123", "-order", "order/1001", "x" * 129, "",
])
def test_event_ids_from_outside_are_opaque_references(event_id: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ExternalEventIn(id=event_id, type="purchase", customer_id="c1")
    assert refused.value.errors()[0]["loc"] == ("id",)


@pytest.mark.parametrize("event_id", ["order-1001", "shop:2026-03-02:55", "a", "o.1_x:y", "5812345678901",
                                      "f47ac10b-58cc-4372-a567-0e02b2c3d479", "x" * 128])
def test_opaque_event_ids_and_their_follow_ups_are_taken(event_id: str) -> None:
    ExternalEventIn(id=event_id, type="purchase", customer_id="c1")
    for suffix in ("tier", "opted_out", "converted"):
        assert opaque_event_id(follow_up_id(event_id, suffix))


async def test_an_event_id_that_carries_personal_data_gets_a_422(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    refused = await api.http.post("/events", json={**PURCHASE, "id": "order:ana@example.com:+12015550123"},
                                  headers=AUTH)
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "id"] and "not an email or phone" in error["msg"]
    in_batch = await api.http.post("/events", json=[PURCHASE, {**PURCHASE, "id": "201-555-0123"}], headers=AUTH)
    assert in_batch.status_code == 422 and in_batch.json()["detail"][0]["loc"] == ["body", 1, "id"]
    with session_scope(api.run.sim.db) as session:
        assert session.exec(select(Event)).all() == []
    assert (await api.http.post("/events", json=PURCHASE, headers=AUTH)).status_code == 202
