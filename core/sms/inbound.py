"""Inbound SMS: opt-out, opt-in and help keywords, and replies that answer an `ask`.

Keywords are the whole message, case- and space-insensitive. STOP takes effect at once
for every journey (consent becomes opted_out before anything else, and every later send
checks consent afresh) and is answered exactly once per inbound message, even when the
number is not a customer's. YES confirms a pending double opt-in or re-subscribes an
opted-out customer; from a subscribed customer it is an ordinary reply (it may answer
an `ask` with choices yes/no). The `text_to_join` keywords of settings.yaml (e.g. JOIN)
sign the number up, creating its customer if need be: core/intake/text_to_join.py.
The rewards keyword of loyalty.yaml (REDEEM), alone or followed by a reward's name
("REDEEM free shipping"), spends points for a coupon: core/sms/redeem.py. It is the one
keyword with more than one word; STOP, START, YES, HELP and the join keywords, whole
messages, come first.

Replays: a message is acted on once per provider id (Twilio's MessageSid), recorded in
`inbound_messages`; a second delivery of a handled sid changes nothing. Twilio sends no
timestamp, so a message's moment is when it first reached us: a consent keyword whose
moment is before the customer's latest consent statement (a message handled late, after
a later STOP or YES) changes nothing, sends nothing and adds no evidence.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.clock import utcnow
from core.customers import consent, suppressions
from core.event import EventIn, EventPath
from core.sms.replies import ReplySender
from store.db import session_scope
from store.tables import Customer, InboundMessage, Message, PhoneSuppression

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)  # how long a delivery that died holds its message

OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN = {"START", "UNSTOP"}
HELP = {"HELP", "INFO"}


def keyword_of(body: str, join: frozenset[str] | set[str] = frozenset()) -> str | None:
    """'opt_out' | 'opt_in' | 'yes' | 'help' | 'join' (one of ``join``, the text-to-join
    keywords) | None for an ordinary reply."""
    word = "".join(body.split()).upper()
    if word in join:
        return "join"
    if word in OPT_OUT:  # "opt out" with a space folds to OPTOUT
        return "opt_out"
    if word in OPT_IN:
        return "opt_in"
    if word == "YES":
        return "yes"
    if word in HELP:
        return "help"
    return None


@dataclass
class InboundResult:
    keyword: str | None
    customers: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    duplicate: bool = False  # this message (by sid) was handled before: nothing was done again
    overtaken: bool = False  # a consent keyword older than the customer's latest statement


class Joiner(Protocol):
    """Text-to-join (core/intake/text_to_join.py): signs the number up; returns the ids of
    the customers it acted on (the one it created, if the number was nobody's)."""

    async def join(self, keyword: str, *, phone: str, customers: list[Customer], at: datetime,
                   message_sid: str) -> list[str]: ...


class Redeemer(Protocol):
    """The REDEEM keyword (core/sms/redeem.py): spends the sender's points for a reward
    and answers with the code or the reason; returns the ids of the customers it acted on."""

    async def redeem(self, reward: str, *, phone: str, customers: list[Customer], at: datetime,
                     message_sid: str) -> list[str]: ...


def redeem_request(body: str, keyword: str) -> str | None:
    """The reward a REDEEM text names ("" for the keyword alone), or None if the text is
    not one: the keyword as its first word, any case."""
    words = body.split()
    if not words or words[0].upper() != keyword:
        return None
    return " ".join(words[1:])


@dataclass
class Inbound:
    """Handles one inbound message. ``replies`` may be None where no reply can go out;
    without a ``joiner`` the text-to-join keywords are ordinary replies, without a
    ``redeemer`` (or rewards in loyalty.yaml) so is REDEEM."""

    router: EventPath
    replies: ReplySender | None = None
    joiner: Joiner | None = None
    redeemer: Redeemer | None = None

    async def handle(self, body: str, *, at: datetime, message_sid: str, phone: str | None = None,
                     customer_id: str | None = None) -> InboundResult:
        """``at``: when this delivery arrived; a repeat of a sid keeps its first moment."""
        at, busy = await asyncio.to_thread(self._claim, message_sid, at)
        if busy:
            log.info("inbound message %s was handled before (or is being handled); this delivery changes nothing",
                     message_sid)
            return InboundResult(None, duplicate=True)
        try:
            result = await self._handle(body, at, message_sid, phone, customer_id)
        except BaseException:
            await asyncio.to_thread(self._handled, message_sid, failed=True)
            raise
        await asyncio.to_thread(self._handled, message_sid)
        return result

    async def _handle(self, body: str, at: datetime, message_sid: str, phone: str | None,
                      customer_id: str | None) -> InboundResult:
        customers = await asyncio.to_thread(self._customers, phone, customer_id)
        phone = phone or (customers[0].phone if customers else None)
        keyword = keyword_of(body, self._join_keywords())
        reward = self._redeem_request(body) if keyword is None else None
        if reward is not None:
            keyword = "redeem"
        if keyword == "yes" and any(c.sms_consent in ("pending", "opted_out", "none") for c in customers):
            keyword = "opt_in"
        elif keyword == "yes":
            keyword = None
        result = InboundResult(keyword, [c.id for c in customers])
        if keyword in ("opt_out", "opt_in", "join") and customers:
            current = await asyncio.to_thread(self._not_overtaken, customers, at)
            if not current:
                log.info("inbound message %s is older than the latest consent statement; ignored", message_sid)
                result.overtaken = True
                return result
            customers = current
        if keyword == "opt_out":
            for customer in customers:
                result.event_ids += await self._consent(customer.id, "opted_out", message_sid, at, body)
            if not customers and phone:
                await asyncio.to_thread(self._suppress, phone, at)
            await self._reply("stop", phone, customers, message_sid, at)
        elif keyword == "opt_in":
            if phone:
                await asyncio.to_thread(self._unsuppress, phone, at)
            changed = [c for c in customers if await self._record(c.id, "opted_in", at, body)]
            if customers:
                # The program's confirmation (CTIA) comes before anything a journey sends.
                await self._reply("welcome", phone, customers, message_sid, at)
            for customer in changed:
                result.event_ids.append(await self._announce(customer.id, "opted_in", message_sid, at))
        elif keyword == "join" and self.joiner is not None and phone:
            result.customers = await self.joiner.join("".join(body.split()).upper(), phone=phone,
                                                      customers=customers, at=at, message_sid=message_sid)
        elif keyword == "help":
            await self._reply("help", phone, customers, message_sid, at)
        elif keyword == "redeem" and customers and phone and self.redeemer is not None and reward is not None:
            result.customers = await self.redeemer.redeem(reward, phone=phone, customers=customers, at=at,
                                                          message_sid=message_sid)
        elif keyword == "redeem":
            log.info("inbound message %s: a rewards keyword with no customer or number to answer; ignored", message_sid)
        elif customers:
            # An ordinary reply: it answers the newest question sent to this number.
            target = await asyncio.to_thread(_awaiting_reply, self.router.db, [c.id for c in customers], at)
            customer_id = target[0] if target else customers[0].id
            event = EventIn(id=f"inbound:{message_sid}", type="sms_replied", customer_id=customer_id, occurred_at=at,
                            properties={"body": body, "reply_to": target[1] if target else None})
            await self.router.route(event, source="sms")
            result.event_ids.append(event.id)
        else:
            log.info("inbound message %s from an unknown number ignored", message_sid)
        return result

    def _join_keywords(self) -> frozenset[str]:
        if self.joiner is None:
            return frozenset()
        return frozenset(self.router.catalog.settings.text_to_join.keywords)

    def _redeem_request(self, body: str) -> str | None:
        rules = self.router.catalog.loyalty
        if self.redeemer is None or not rules.rewards:
            return None
        return redeem_request(body, rules.rewards_keyword)

    def _customers(self, phone: str | None, customer_id: str | None) -> list[Customer]:
        with session_scope(self.router.db) as session:
            if customer_id:
                found = session.get(Customer, customer_id)
                return [found] if found else []
            if not phone:
                return []
            return list(session.exec(select(Customer).where(Customer.phone == phone)
                                     .order_by(col(Customer.updated_at).desc())).all())

    async def _consent(self, customer_id: str, status: str, sid: str, at: datetime, body: str) -> list[str]:
        if not await self._record(customer_id, status, at, body):
            return []
        return [await self._announce(customer_id, status, sid, at)]

    async def _record(self, customer_id: str, status: str, at: datetime, body: str) -> bool:
        return await asyncio.to_thread(consent.record, self.router.db, customer_id, status, source="sms_keyword",
                                       at=at, disclosure=f"customer texted {body.strip()!r}", only_if_newer=True)

    async def _announce(self, customer_id: str, status: str, sid: str, at: datetime) -> str:
        event = EventIn(id=f"inbound:{sid}:{customer_id}:{status}", type=status, customer_id=customer_id,
                        occurred_at=at, properties={"source": "sms_keyword"})
        await self.router.route(event, source="sms")
        return event.id

    async def _reply(self, kind: str, phone: str | None, customers: list[Customer], sid: str, at: datetime) -> None:
        if self.replies is None or not phone:
            return
        await self.replies.send(kind, phone=phone,  # type: ignore[arg-type]
                                customer_id=customers[0].id if customers else None, key=sid, at=at)

    def _suppress(self, phone: str, at: datetime) -> None:
        with session_scope(self.router.db) as session:
            if suppressions.find(session, phone) is None:  # an erased number stays under its hash only
                session.add(PhoneSuppression(phone=phone, reason="opted_out", source="sms_keyword", created_at=at))

    def _unsuppress(self, phone: str, at: datetime) -> None:
        lift_opt_out(self.router.db, phone, at)

    def _claim(self, sid: str, at: datetime) -> tuple[datetime, bool]:
        """Take the sid for this delivery: (its first moment, busy), busy when it was
        handled or another delivery is handling it now. A delivery that failed gives
        it back; one that died (the process was killed) holds it for CLAIM_LEASE, then
        the next delivery handles it again, which is safe: every effect is keyed by the sid."""
        now = utcnow()
        try:
            with session_scope(self.router.db) as session:
                found = session.get(InboundMessage, sid)
                if found is None:
                    session.add(InboundMessage(sid=sid, received_at=at, claimed_at=now))
                    return at, False
                if found.handled_at is not None or (found.claimed_at and found.claimed_at > now - CLAIM_LEASE):
                    return found.received_at, True
                # Free, or held by a delivery that died: take it, unless another one just did.
                taken: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                    update(InboundMessage).where(col(InboundMessage.sid) == sid,
                                                 col(InboundMessage.handled_at).is_(None),
                                                 _same(col(InboundMessage.claimed_at), found.claimed_at))
                    .values(claimed_at=now))
                return found.received_at, taken.rowcount != 1
        except IntegrityError:  # the same sid delivered concurrently: the other one has it
            with session_scope(self.router.db, readonly=True) as session:
                found = session.get(InboundMessage, sid)
                if found is None:
                    raise
                return found.received_at, True

    def _handled(self, sid: str, *, failed: bool = False) -> None:
        with session_scope(self.router.db) as session:
            found = session.get(InboundMessage, sid)
            if found is not None and found.handled_at is None:
                if failed:
                    found.claimed_at = None  # the next delivery handles it at once
                else:
                    found.handled_at = utcnow()
                session.add(found)

    def _not_overtaken(self, customers: list[Customer], at: datetime) -> list[Customer]:
        with session_scope(self.router.db, readonly=True) as session:
            return [c for c in customers if not consent.newer_than(session, c.id, at)]


def lift_opt_out(db: Any, phone: str, at: datetime) -> None:
    """A new express consent from the number lifts its opt-out suppression (one made
    after ``at`` stays: an older message cannot undo it)."""
    with session_scope(db) as session:
        suppressions.lift_opt_out(session, phone, at)  # an erased number's hash too: its owner asked


def _awaiting_reply(db: Any, customer_ids: list[str], at: datetime) -> tuple[str, dict[str, Any]] | None:
    """The newest question sent to these customers: replies answer the latest ask."""
    with session_scope(db) as session:
        message = session.exec(
            select(Message).where(col(Message.customer_id).in_(customer_ids), col(Message.expects_reply).is_(True),
                                  col(Message.status).in_(("sent", "delivered", "unconfirmed")),
                                  col(Message.sent_at) <= at)
            .order_by(col(Message.sent_at).desc())
        ).first()
        if message is None:
            return None
        message.replied_at = at
        session.add(message)
        return message.customer_id, {"enrollment_id": message.enrollment_id, "journey": message.journey_id,
                                     "step": message.step_id, "message_id": message.id}


def _same(column: Any, value: datetime | None) -> Any:
    return column.is_(None) if value is None else column == value
