"""One-click email unsubscribe (RFC 8058): a signed token in, the customer opted out of
email with its evidence. SMS consent is not touched: the customer left the emails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.customers import email_consent
from store.db import session_scope
from store.tables import Customer

SOURCE = "email_unsubscribe"


def unsubscribe(db: Any, token: str, at: datetime) -> bool | None:
    """None: not a token of this server (or its customer is gone); True: opted out now;
    False: already opted out (a second click, a mail client's retry)."""
    with session_scope(db) as session:
        found = email_consent.read_token(session, token)
        if found is None:
            return None
        customer_id, message_id = found
        customer = session.get(Customer, customer_id, with_for_update=True)
        if customer is None:
            return None
        return email_consent.record(session, customer, "opted_out", source=SOURCE, at=at,
                                    disclosure=f"one-click unsubscribe from email {message_id}")


def valid(db: Any, token: str) -> bool:
    with session_scope(db) as session:
        return email_consent.read_token(session, token) is not None
