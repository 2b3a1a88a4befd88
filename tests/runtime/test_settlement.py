"""Unknown outcomes are settled, not left: the provider's own records decide whether a
text it may have received was sent (kept, with its id) or never arrived (sent again,
once, through the sending rules). The journey treats the step as sent only after that."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from messaging.senders.base import AmbiguousProviderError, OutgoingSms, ProviderMessage, ProviderReceipt
from processes.simulate import CustomerSpec, Simulation
from store.db import Database, session_scope
from store.tables import Message
from tests.runtime.support import sms, write_journeys

START = datetime(2026, 3, 2, 15, tzinfo=UTC)  # a Monday afternoon: no quiet hours
TWO_TEXTS = """
id: promo
name: Two texts
trigger: {event: signup}
steps:
  - id: first
    send_sms: {text: "first text"}
  - if: "sent('first')"
    then:
      - id: second
        send_sms: {text: "second text"}
"""


class ScriptedProvider:
    """A provider whose answers are scripted per attempt: `created` says whether the
    request created a message; `answer` whether the caller heard back (else: a 5xx)."""

    name = "scripted"

    def __init__(self, script: list[tuple[bool, bool]]) -> None:
        self.script = list(script)
        self.records: list[tuple[str, ProviderMessage]] = []  # the provider's own truth
        self.attempts = 0
        self.lookups = 0
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        with self._lock:
            self.attempts += 1
            created, answer = self.script.pop(0) if self.script else (True, True)
            sid = f"SM{self.attempts:032d}"
            if created:
                self.records.append((sms.to, ProviderMessage(provider_message_id=sid, body=sms.body,
                                                             status="queued", created_at=None)))
        if not answer:
            raise AmbiguousProviderError("HTTP 500", http_status=500)
        return ProviderReceipt(provider_message_id=sid, status="queued")

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        with self._lock:
            self.lookups += 1
            return [message for number, message in reversed(self.records) if number == to]

    def bodies(self) -> list[str]:
        return [message.body for _, message in self.records]


def _messages(db: Database) -> dict[str, Message]:
    with session_scope(db) as session:
        return {m.step_id or "": m for m in session.exec(select(Message)).all()}


async def _run(env, db, journeys_dir: Path, provider: ScriptedProvider) -> list[dict]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(journeys_dir, {"promo": TWO_TEXTS})
    async with Simulation(env, catalog, db, start=START, sender=provider) as sim:
        await sim.add_customer(CustomerSpec())
        assert await sim.enter(catalog.journey("promo"), "sim-customer")
        result = await sim.result("promo", "sim-customer")
        return [entry.model_dump(mode="json") | entry.details for entry in result.timeline]


async def test_a_text_the_provider_has_is_kept_with_its_id_and_never_resent(journeys_dir: Path, env, db) -> None:
    provider = ScriptedProvider([(True, False)])  # created, then a 500
    timeline = await _run(env, db, journeys_dir, provider)
    assert provider.bodies() == ["first text", "second text"]  # once each
    assert provider.lookups == 1
    first = _messages(db)["first"]
    assert first.status == "sent" and first.provider_message_id == f"SM{1:032d}"
    assert [e["status"] for e in sms({"timeline": timeline})] == ["sent", "sent"]
    assert [e["action"] for e in timeline if e["step"] == "first"][:1] == ["sms_unconfirmed"]


async def test_a_text_the_provider_never_got_is_sent_again_once(journeys_dir: Path, env, db) -> None:
    provider = ScriptedProvider([(False, False)])  # a 500 that created nothing
    timeline = await _run(env, db, journeys_dir, provider)
    assert provider.bodies() == ["first text", "second text"]  # the first arrived once, by the resend
    first = _messages(db)["first"]
    assert first.status == "sent" and first.provider_message_id == f"SM{2:032d}"
    actions = [e["action"] for e in timeline if e["step"] == "first"]
    assert actions == ["sms_unconfirmed", "sms_resend", "sms"]
    # The second step waited for the settlement: `sent('first')` was true only then.
    assert _messages(db)["second"].status == "sent"


async def test_a_crash_between_reserving_and_sending_ends_the_same_way(journeys_dir: Path, env, db) -> None:
    """The worker died after writing `sending`, before the request: the retry settles it."""
    provider = ScriptedProvider([])
    real_send = provider.send
    crashed = []

    def crash_once(sms: OutgoingSms) -> ProviderReceipt:
        if not crashed:
            crashed.append(sms.message_key)
            raise RuntimeError("worker killed before the request left")  # not a provider answer
        return real_send(sms)

    provider.send = crash_once  # type: ignore[method-assign]
    await _run(env, db, journeys_dir, provider)
    assert provider.bodies() == ["first text", "second text"]
    assert _messages(db)["first"].status == "sent"


async def test_absence_is_believed_only_after_the_grace_period(journeys_dir: Path, db) -> None:
    """Called directly, the way a retry or an early timer would: before the grace period
    an empty list proves nothing; after it, the text is released to be sent again."""
    from activities.deps import Deps
    from activities.sending import SendingActivities
    from core.customers import consent
    from language.models import Message as MessageSpec
    from store.tables import Customer
    from workflows.contracts import Facts, RunRef, SendInput, SettleInput

    catalog = write_journeys(journeys_dir, {"promo": TWO_TEXTS})
    with session_scope(db) as session:
        session.add(Customer(id="c1", phone="+12015550123", created_at=START, updated_at=START))
    consent.record(db, "c1", "opted_in", source="test", at=START)
    provider = ScriptedProvider([(False, False)])
    activities = SendingActivities(Deps(catalog=catalog, db=db, sender=provider, router=None,  # type: ignore[arg-type]
                                        settle_after=timedelta(minutes=2)))
    run = RunRef(enrollment_id="e1", customer_id="c1", journey_id="promo", journey_version="v", simulated=True)
    call = {"run": run, "step_key": "first", "facts": Facts(entered_at=START)}
    sent = await activities.send_sms(SendInput(**call, at=START, message=MessageSpec(text="first text"),
                                               purpose="marketing"))
    assert sent.status == "unconfirmed" and sent.settle_at == START + timedelta(minutes=2)
    assert sent.message_id is not None
    early = await activities.settle_sms(SettleInput(**call, at=START + timedelta(seconds=30),
                                                    message_id=sent.message_id))
    assert early.status == "unconfirmed" and _messages(db)["first"].status == "unconfirmed"
    late = await activities.settle_sms(SettleInput(**call, at=START + timedelta(minutes=2),
                                                   message_id=sent.message_id))
    assert late.status == "absent" and _messages(db)["first"].status == "reserved"
    again = await activities.send_sms(SendInput(**call, at=START + timedelta(minutes=2, seconds=1),
                                                message=MessageSpec(text="first text"), purpose="marketing"))
    assert again.status == "sent" and provider.bodies() == ["first text"]


async def test_one_reply_reserved_twice_at_once_is_one_message(journeys_dir: Path, env, db) -> None:
    """Two deliveries of one inbound message racing: one reply row, one text."""
    import asyncio

    from core.sms.replies import ReplySender

    catalog = write_journeys(journeys_dir, {"promo": TWO_TEXTS})
    provider = ScriptedProvider([])
    async with Simulation(env, catalog, db, start=START, sender=provider) as sim:
        replies = ReplySender(db, sim.env.client, catalog.settings)
        rows = await asyncio.gather(*(replies.send("help", phone="+12015550123", customer_id=None, key="SM1",
                                                   at=START) for _ in range(6)))
    assert len({row.id for row in rows}) == 1
    assert provider.bodies() == [catalog.settings.replies.help]


async def test_sends_and_settlements_are_counted_for_the_workers_metrics(journeys_dir: Path, env, db) -> None:
    provider = ScriptedProvider([(False, False)])  # unknown outcome, absent at the provider, sent again
    catalog = write_journeys(journeys_dir, {"promo": TWO_TEXTS})
    async with Simulation(env, catalog, db, start=START, sender=provider) as sim:
        await sim.add_customer(CustomerSpec())
        assert await sim.enter(catalog.journey("promo"), "sim-customer")
        await sim.result("promo", "sim-customer")
        count = sim.metrics.registry.get_sample_value
    assert count("journeys_sms_sends_total", {"journey": "promo", "status": "unconfirmed",
                                              "reason": "provider_outcome_unknown"}) == 1
    assert count("journeys_sms_sends_total", {"journey": "promo", "status": "sent", "reason": ""}) == 2
    assert count("journeys_sms_settlements_total", {"outcome": "absent"}) == 1
    assert count("journeys_sms_settlements_total", {"outcome": "settled"}) is None
    assert count("journeys_activity_failures_total", {"activity_type": "journey.send_sms", "error": "Exception"}) is None
