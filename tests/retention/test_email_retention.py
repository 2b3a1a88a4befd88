"""Retention of email bodies (core/retention.py, kind ``emails``) on SQLite and
PostgreSQL: emails sent through the real send activity long ago lose subject, text and
HTML; new ones and those of a running enrollment keep them; status and times stay, and
a second run finds nothing to do."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from core.retention import run_all, run_batch
from language.models import EmailMessage
from messaging.senders.email import ConsoleEmailSender
from store.db import session_scope
from store.tables import Email, Enrollment
from tests.email.support import MOMENT, add_customer, call
from tests.email.support import activities as email_activities
from tests.runtime.support import write_journeys

MESSAGE = EmailMessage(subject="{{ customer.first_name }}, your cart", text="Hello {{ customer.first_name }}",
                       html="<p>Hello {{ customer.first_name }}</p>")
NOW = MOMENT + timedelta(days=800)


async def _send(acts, enrollment_id: str, at) -> None:  # type: ignore[no-untyped-def]
    base = call(MESSAGE)
    outcome = await acts.send_email(base.model_copy(update={
        "at": at, "run": base.run.model_copy(update={"enrollment_id": enrollment_id})}))
    assert outcome.status == "sent", outcome


async def test_old_email_bodies_go_and_new_and_running_ones_stay(journeys_dir: Path, db) -> None:
    catalog = write_journeys(journeys_dir, {})
    add_customer(db)
    acts = email_activities(db, catalog, ConsoleEmailSender())
    for enrollment_id, at, status in [("old-1", MOMENT, "ended"), ("old-2", MOMENT + timedelta(days=1), "ended"),
                                      ("running", MOMENT, "active"), ("new", NOW - timedelta(days=5), "ended")]:
        await _send(acts, enrollment_id, at)
        with session_scope(db) as session:
            session.add(Enrollment(id=enrollment_id, journey_id="promo", journey_version="v", customer_id="c1",
                                   workflow_id=f"wf-{enrollment_id}", status=status, entered_at=at))
    retention = catalog.settings.retention
    assert run_batch(db, retention, "emails", NOW, dry_run=True).changed == 2
    report = run_all(db, retention, NOW, batch_size=1)
    assert report.changed["emails"] == 2
    with session_scope(db, readonly=True) as session:
        rows = {row.enrollment_id: row for row in session.exec(select(Email)).all()}
    for gone in ("old-1", "old-2"):
        row = rows[gone]
        assert (row.subject, row.body, row.html) == (None, None, None) and row.anonymised_at == NOW
        assert row.status == "sent" and row.provider_message_id and row.sent_at is not None
    for kept in ("running", "new"):
        row = rows[kept]
        assert row.subject == "Ada, your cart" and "Hello Ada" in (row.body or "") and row.anonymised_at is None
    assert run_all(db, retention, NOW).changed["emails"] == 0


async def test_emails_follow_their_own_period(journeys_dir: Path, db) -> None:
    catalog = write_journeys(journeys_dir, {}, settings="brand: Nordic Shoes\nretention: {emails: null}\n")
    add_customer(db)
    acts = email_activities(db, catalog, ConsoleEmailSender())
    await _send(acts, "old-1", MOMENT)
    report = run_all(db, catalog.settings.retention, NOW)
    assert report.changed["emails"] == 0 and "emails" in report.kept_forever
