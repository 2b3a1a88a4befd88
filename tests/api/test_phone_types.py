"""Numbers that cannot take a text (premium-rate, shared-cost, non-geographic,
landlines, ...) are refused when a profile is saved, with the reason; one stored
before that check is skipped at send time as `invalid_phone`."""

from __future__ import annotations

import pytest
from sqlmodel import select

from store.db import session_scope
from store.tables import Customer, Message
from tests.api.conftest import AUTH, Api, eventually


@pytest.mark.parametrize(("phone", "words"), [
    ("+1 900 234 5678", "a premium-rate number (+1 (US)): it cannot take a text"),
    ("+882 34 2123 4", "a non-geographic number (+882): it cannot take a text"),
    ("+44 121 234 5678", "a landline (+44 (GB)): it cannot take a text"),
])
async def test_a_profile_with_a_number_that_cannot_take_a_text_is_a_422(api: Api, phone: str, words: str) -> None:
    response = await api.http.put("/customers/c9", json={"phone": phone, "first_name": "Ana"}, headers=AUTH)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "phone"] and words in error["msg"]
    with session_scope(api.run.sim.db) as session:
        assert session.get(Customer, "c9") is None
    ok = await api.http.put("/customers/c9", json={"phone": "+1 201 555 0123"}, headers=AUTH)
    assert ok.status_code == 200  # fixed-line-or-mobile, as most US numbers are


async def test_a_premium_number_stored_before_the_check_is_never_texted(api: Api) -> None:
    await api.customer("c1", phone="+19002345678")  # written straight to the database
    await api.http.post("/events", json={"id": "p-1", "type": "promo", "customer_id": "c1"}, headers=AUTH)

    def skipped() -> Message | None:
        with session_scope(api.run.sim.db) as session:
            return session.exec(select(Message).where(Message.customer_id == "c1",
                                                      Message.status == "skipped")).first()

    message = await eventually(skipped)
    assert message is not None and message.reason == "invalid_phone"
    assert api.sender.sent == []
