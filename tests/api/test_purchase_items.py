"""A purchase's line items at the HTTP edge: a 422 naming the item, nothing stored;
valid ones reach the purchase tables that customer.bought() reads."""

from __future__ import annotations

from sqlmodel import select

from store.db import session_scope
from store.tables import Event, PurchaseItem
from tests.api.conftest import AUTH, Api

ORDER = {"id": "order-7", "type": "purchase", "customer_id": "c1",
         "properties": {"amount": 9, "items": [{"product": "latte", "category": "coffee"}, {"category": ""}]}}


async def test_bad_line_items_get_a_422_naming_the_item(api: Api) -> None:
    refused = await api.http.post("/events", json=ORDER, headers=AUTH)
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "properties"] and "items[1].category must be non-empty text" in error["msg"]
    with session_scope(api.run.sim.db) as session:
        assert session.exec(select(Event)).all() == []
    fixed = {**ORDER, "properties": {"amount": 9, "items": [{"product": "latte", "category": "coffee"}]}}
    assert (await api.http.post("/events", json=fixed, headers=AUTH)).status_code == 202
    with session_scope(api.run.sim.db) as session:
        assert [(i.product, i.category, i.quantity) for i in session.exec(select(PurchaseItem)).all()] == [
            ("latte", "coffee", 1)]
