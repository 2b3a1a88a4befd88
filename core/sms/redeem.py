"""The rewards keyword (loyalty.yaml ``rewards_keyword``, REDEEM by default): a customer
texts ``REDEEM free shipping`` (or ``REDEEM`` alone when there is one reward) and gets a
reply with the coupon code, or with the reason nothing was spent.

The reward's name is matched ignoring case, spaces, dashes and underscores ("Free
Shipping", "free-shipping", "FREE_SHIPPING"). The idempotency key is the message's
MessageSid, so a redelivered text never spends twice; the reply is a transactional one
(core/sms/replies.py, kind ``reward``), sent once per message. A number shared by several
customers spends the points of its most recently updated customer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from core.customers.records import UnknownCustomer
from core.event import EventPath
from core.loyalty.rewards import Redeemed, RewardRefused, only_reward, redeem
from core.sms.replies import ReplySender
from language.config import Loyalty
from store.tables import Customer

log = logging.getLogger(__name__)


def _folded(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def reward_named(rules: Loyalty, asked: str) -> str | None:
    """The reward the text names ("" asks for the only one), or None."""
    if not asked.strip():
        return only_reward(rules)
    wanted = _folded(asked)
    return next((name for name in rules.rewards if _folded(name) == wanted), None)


def menu(rules: Loyalty) -> str:
    choices = ", ".join(f"{rules.rewards_keyword} {name.replace('_', ' ').upper()} ({r.points} points)"
                        for name, r in rules.rewards.items())
    return f"Reply {choices}."


def redeemed_text(brand: str, done: Redeemed) -> str:
    until = f", valid until {done.expires_at:%b %d, %Y}" if done.expires_at else ""
    return (f"{brand}: your code {done.code} ({done.discount}{until}). {done.points} points spent, "
            f"{done.balance} left.")


@dataclass
class SmsRedeemer:
    """core.sms.inbound.Redeemer: wired into Inbound by the processes that take inbound SMS."""

    router: EventPath
    replies: ReplySender

    async def redeem(self, reward: str, *, phone: str, customers: list[Customer], at: datetime,
                     message_sid: str) -> list[str]:
        catalog = self.router.catalog
        rules, brand = catalog.loyalty, catalog.settings.brand
        customer = customers[0]
        name = reward_named(rules, reward)
        if name is None:
            text = f"{brand}: which reward? {menu(rules)}"
        else:
            try:
                done = await asyncio.to_thread(redeem, self.router.db, rules, customer.id, name,
                                               key=f"sms:{message_sid}", at=at)
                text = redeemed_text(brand, done)
            except RewardRefused as err:
                log.info("REDEEM from customer %s: %s", customer.id, err.reason)
                text = f"{brand}: {err}."
            except UnknownCustomer:  # erased meanwhile
                return []
        await self.replies.send("reward", phone=phone, customer_id=customer.id, key=message_sid, at=at, body=text)
        return [customer.id]
