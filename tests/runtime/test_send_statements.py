"""What one text asks of the database: the send activity is on the path of every reaction, so
each statement it can do without is a statement it must not do (bench/events.py measures the
time; this holds the count)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlmodel import select

from store.db import session_scope
from store.tables import Enrollment, Event, Message
from tests.runtime.support import DIRECT_MOMENT, consented_sender_activities, direct_call, write_journeys

PROMO = """
id: promo
name: One text
trigger: {event: signup}
steps:
  - id: text
    send_sms: {text: "Hello"}
"""


class Statements:
    """The statements run on ``db`` from now on, as (verb, first table named)."""

    def __init__(self, db: Any) -> None:
        self.seen: list[tuple[str, str]] = []
        sa_event.listen(db, "before_cursor_execute", self._execute)

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.replace("(", " ").split()
        verb = words[0].upper()
        if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            return
        marker = {"SELECT": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE"}.get(verb, verb)
        self.seen.append((verb, words[[w.upper() for w in words].index(marker) + 1]))


def _triggered_send(journeys_dir: Path, db: Any, sender: Any, text: str) -> tuple[Any, Any]:
    """The send activities, and the call of a text of run e1 of customer c1, entered on
    event ev-1 (what a triggered run's sends see)."""
    from language.models import Message as MessageSpec

    activities = consented_sender_activities(db, write_journeys(journeys_dir, {"promo": PROMO}), sender)
    with session_scope(db) as session:
        session.add(Event(id="ev-1", customer_id="c1", type="signup", occurred_at=DIRECT_MOMENT,
                          received_at=DIRECT_MOMENT, properties={"cart_id": "k-9"}))
        session.add(Enrollment(id="e1", journey_id="promo", journey_version="v", customer_id="c1",
                               workflow_id="journey/promo/c1", trigger_event_id="ev-1", entered_at=DIRECT_MOMENT))
    call = direct_call(MessageSpec(text=text))
    return activities, call.model_copy(update={"run": call.run.model_copy(update={"trigger_event_id": "ev-1"})})


async def test_a_plain_text_reads_only_what_its_rules_need_and_writes_each_row_once(
        journeys_dir: Path, db, sender) -> None:
    """No read of the trigger event (the text does not name it), of shop codes (it carries
    none), of the enrollment (one UPDATE sets its last text) or of the message again to
    record the provider's answer."""
    activities, call = _triggered_send(journeys_dir, db, sender, "Hello")
    seen = Statements(db)
    outcome = await activities.send_sms(call)
    assert outcome.status == "sent" and len(sender.sent) == 1
    assert seen.seen == [
        ("SELECT", "customers"),  # locked: the rules below read, then the reservation writes
        ("SELECT", "messages"),  # an earlier attempt of this very text
        ("SELECT", "journey_controls"),  # paused by an operator?
        ("SELECT", "pseudonym_keys"), ("SELECT", "phone_suppressions"),  # the number's opt-out
        ("SELECT", "messages"),  # the frequency caps
        ("INSERT", "messages"), ("UPDATE", "enrollments"),  # the reservation
        ("UPDATE", "messages"),  # the provider's answer
    ]
    with session_scope(db, readonly=True) as session:
        [row] = session.exec(select(Message)).all()
        run = session.get(Enrollment, "e1")
    assert row.status == "sent" and row.provider_message_id and row.sent_at is not None
    assert run is not None and run.last_message_at is not None


async def test_a_text_that_names_the_trigger_reads_it(journeys_dir: Path, db, sender) -> None:
    activities, call = _triggered_send(journeys_dir, db, sender, "Your cart {{ trigger.properties.cart_id }} is waiting")
    seen = Statements(db)
    assert (await activities.send_sms(call)).status == "sent"
    assert ("SELECT", "events") in seen.seen
    assert sender.sent[-1].body == "Your cart k-9 is waiting"
