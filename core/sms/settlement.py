"""Settling an unknown outcome: did the provider get a text we may or may not have sent?

The provider's own records decide (``SmsSender.lookup``): a message to the same number,
with the same body, created since the attempt and not already another message's, is
ours: the text is ``sent``, with its id. None found once the grace period is over: the
provider never got it, and the text is released (``reserved``) to be sent again, once,
through the same rules. Before the grace period an empty list proves nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlmodel import col, select

from messaging.senders.base import SmsSender
from store.db import Database, session_scope
from store.tables import Customer, Message

log = logging.getLogger(__name__)

LOOKUP_SKEW = timedelta(minutes=5)  # the provider's clock and ours may differ this much

Settled = Literal["settled", "pending", "absent"]


def settle(db: Database, sender: SmsSender, message_id: str, *, at: datetime, grace: timedelta,
           any_time: bool = False) -> Settled:
    """Settle one ``unconfirmed`` message. ``settled``: it is no longer unconfirmed (found
    now, or by a delivery receipt before); ``pending``: too early to tell; ``absent``:
    released to be sent again. ``any_time``: match however long ago the provider created
    it (simulations, whose journey clock is not the provider's). Raises
    RetryableProviderError when the provider cannot be asked."""
    with session_scope(db, readonly=True) as session:
        row = session.get(Message, message_id)
        if row is None or row.status != "unconfirmed":
            return "settled"
        phone = row.reply_to or session.exec(select(Customer.phone).where(Customer.id == row.customer_id)).first()
        attempted = row.sent_at or row.created_at
    since = datetime.min.replace(tzinfo=UTC) if any_time else attempted - LOOKUP_SKEW
    found = sender.lookup(phone, since) if phone else []
    with session_scope(db) as session:
        row = session.exec(select(Message).where(Message.id == message_id).with_for_update()).first()
        if row is None or row.status != "unconfirmed":
            return "settled"
        sids = [m.provider_message_id for m in found]
        claimed = set(session.exec(select(Message.provider_message_id).where(
            col(Message.provider_message_id).in_(sids), Message.id != row.id)).all())
        match = next((m for m in reversed(found)  # oldest first
                      if m.body == row.body and m.provider_message_id not in claimed), None)
        if match is None and at < attempted + grace:
            return "pending"
        if match is None:
            row.status, row.reason, row.sent_at, row.updated_at = "reserved", "provider_never_received", None, at
            session.add(row)
            log.warning("message %s settled: the provider never received it; sending it again", row.id)
            return "absent"
        row.status, row.reason, row.updated_at = "sent", None, at
        row.provider_message_id, row.provider_status = match.provider_message_id, match.status[:16]
        session.add(row)
        log.info("message %s settled: the provider has it", row.id)
        return "settled"
