"""What a provider error says about a phone number, applied the same way whether it
comes back from a send or in a delivery receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.customers import consent
from core.event import EventIn
from messaging.senders.base import CARRIER_OPT_OUT_CODES, UNUSABLE_NUMBER_CODES
from store.db import session_scope
from store.tables import Customer, PhoneSuppression

_OPT_OUT = {str(code) for code in CARRIER_OPT_OUT_CODES}
_UNUSABLE = {str(code) for code in UNUSABLE_NUMBER_CODES}


def apply_provider_error(db: Any, customer_id: str, code: str | None, at: datetime,
                         event_id: str) -> list[EventIn]:
    """A carrier opt-out (21610) opts the customer out everywhere; a number that cannot
    receive SMS (21211, 21614, 30006) is retired. Returns the events to route."""
    if code in _OPT_OUT and consent.record(db, customer_id, "opted_out", source="carrier", at=at,
                                           disclosure=f"provider error {code}"):
        return [EventIn(id=event_id, type="opted_out", customer_id=customer_id, occurred_at=at,
                        properties={"source": "carrier"})]
    if code in _UNUSABLE:
        with session_scope(db) as session:
            customer = session.get(Customer, customer_id)
            if customer is not None and customer.phone:
                customer.phone_status = "unusable"
                session.add(customer)
                if session.get(PhoneSuppression, customer.phone) is None:
                    session.add(PhoneSuppression(phone=customer.phone, reason="unusable", source=f"provider:{code}",
                                                 created_at=at))
    return []
