"""What the erasure tests share: a customer made through the real paths (the API, the
Twilio webhook, the journeys and the send activity), the aggregates reports read, a scan
of every text in every table, and the checks after an erasure (CLI and API alike)."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel, col
from temporalio.client import Client, WorkflowExecutionStatus

from core.intake.importing import csv_rows, import_customers
from processes.simulate import CustomerSpec
from store.db import session_scope
from store.tables import Click, Customer, Enrollment, Erasure, Link, Message, PhoneSuppression, PointsEntry
from tests.api.conftest import AUTH, Api, eventually
from workflows.reply import reply_workflow_id

PHONE = "+12015550123"
NAME, SURNAME, EMAIL = "Adalind", "Lovelacey", "adalind@example.com"
ADDRESS = "12 Analytical Street"
ANSWER = "Adalind here, loved the boots"  # a free-text reply
# Every form of what must be gone (the number also without its +, as some systems write it).
PERSONAL = (PHONE, PHONE.lstrip("+"), NAME, SURNAME, EMAIL, ADDRESS, ANSWER, "shoe_size")


async def seed(api: Api) -> None:
    """c1: profile, double opt-in, a purchase with personal properties, the survey answered
    and its link clicked, a free-text reply, a promo run still waiting (active)."""
    assert (await api.http.put("/customers/c1", headers=AUTH, json={
        "phone": "+1 201 555 0123", "first_name": NAME, "last_name": SURNAME, "email": EMAIL,
        "timezone": "America/New_York", "birthday": "1990-05-17", "attributes": {"shoe_size": 38},
    })).status_code == 200
    await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "status": "opted_in", "source": "checkout", "disclosure": "Text me offers. Reply STOP to cancel."})
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "YES", "MessageSid": "SMyes"})
    await api.http.post("/events", headers=AUTH, json={
        "id": "order-1", "type": "purchase", "customer_id": "c1",
        "properties": {"amount": 40, "ship_to": f"{NAME} {SURNAME}, {ADDRESS}", "gift": False,
                       "items": [{"product": "trail-runner-42", "category": "shoes", "price": 40}]}})
    # The provider is called before the row says `sent`: a reply waits for the row.
    await eventually(lambda: any(m.step_id == "nps" and m.status == "sent" for m in api.run.messages("c1")))
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "9", "MessageSid": "SMr"})

    def review_link() -> Link | None:
        with session_scope(api.run.sim.db) as session:
            return session.execute(select(Link).where(col(Link.step_id) == "review")).scalars().first()

    link = await eventually(review_link)
    assert link is not None
    assert (await api.http.get(f"/l/{link.code}", follow_redirects=False)).status_code == 302
    assert (await api.run.timeline("survey", customer="c1"))["outcome"] == "clicked"
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": ANSWER, "MessageSid": "SMfree"})
    await api.http.post("/events", headers=AUTH, json={"id": "promo-1", "type": "promo", "customer_id": "c1"})
    await eventually(lambda: any(m.step_id == "offer" and m.status == "sent" for m in api.run.messages("c1")))
    with session_scope(api.run.sim.db) as session:  # written by the loyalty job, not in this catalog
        session.add(PointsEntry(key="c1:signup", customer_id="c1", points=50, reason="signup",
                                occurred_at=link.created_at))
    assert [r.status for r in api.run.enrollments("promo", "c1")] == ["active"]
    # Reports are read once every text has its final status.
    await eventually(lambda: all(m.status not in ("reserved", "sending") for m in api.run.messages("c1")))


def aggregates(db: Any) -> dict[str, Any]:
    """What reports count: messages per journey and status, clicks, runs started per journey,
    conversions, points, orders and spend."""
    with session_scope(db, readonly=True) as session:
        return {
            "messages": Counter({f"{journey}:{status}": n for journey, status, n in session.execute(
                select(Message.journey_id, Message.status, func.count()).group_by(
                    Message.journey_id, Message.status))}),
            "clicks": session.execute(select(func.count()).select_from(Click)).scalar_one(),
            "started": Counter({journey: n for journey, n in session.execute(
                select(Enrollment.journey_id, func.count()).group_by(Enrollment.journey_id))}),
            "conversions": session.execute(select(func.count()).where(
                col(Enrollment.converted_at).is_not(None))).scalar_one(),
            "points": session.execute(select(func.coalesce(func.sum(PointsEntry.points), 0))).scalar_one(),
            "orders": session.execute(select(func.sum(Customer.orders_count), func.sum(Customer.total_spent))).one()[:],
        }


def metrics_lines(text: str) -> list[str]:
    """The /metrics samples an erasure must not change: messages by status, runs started."""
    return sorted(line for line in text.splitlines()
                  if line.startswith(("journeys_messages{", "journeys_started_total{")))


def scan(db: Any, needles: tuple[str, ...] = PERSONAL) -> list[str]:
    """Every value of every column of every table, as text, that holds one of ``needles``."""
    hits = []
    with session_scope(db, readonly=True) as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                for column, value in row.items():
                    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
                    hits += [f"{table.name}.{column}: {needle}" for needle in needles if needle in text]
    return hits


async def histories(client: Client, db: Any, customer_id: str) -> str:
    """The Temporal histories of the customer's runs and of the replies sent to them."""
    with session_scope(db, readonly=True) as session:
        runs = session.execute(select(Enrollment.workflow_id).where(col(Enrollment.customer_id) == customer_id))
        replies = session.execute(select(Message.key).where(col(Message.purpose) == "reply"))
        ids = sorted({*runs.scalars(), *(reply_workflow_id(key) for key in replies.scalars())})
    texts = []
    for workflow_id in ids:
        raw = (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()
        # Payloads (inputs, results, signals, memos) are base64 in the JSON: read them decoded.
        texts += [raw, *(base64.b64decode(data).decode(errors="replace")
                         for data in re.findall(r'"data":\s*"([A-Za-z0-9+/=]+)"', raw))]
    assert len(ids) >= 4  # survey, welcome, promo and at least the confirmation's reply
    return "\n".join(texts)


async def check_erased(api: Api, before: dict[str, Any], *, source: str) -> None:
    """After c1's erasure: nothing personal left, reports unchanged, the run ended, the
    audit row written, and the number still suppressed when it comes back."""
    db = api.run.sim.db
    assert scan(db) == []
    after = aggregates(db)
    assert after == before, (before, after)
    promo = api.run.enrollments("promo", "c1")
    assert [(r.status, r.outcome) for r in promo] == [("ended", "erased")]
    description = await api.run.sim.env.client.get_workflow_handle(promo[0].workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.TERMINATED
    with session_scope(db, readonly=True) as session:
        audits = session.execute(select(Erasure).where(col(Erasure.customer_id) == "c1")).scalars().all()
        suppressed = session.execute(select(PhoneSuppression)).scalars().all()
    assert [(a.source, a.completed_at is not None) for a in audits] == [(source, True)]
    counts = audits[0].counts
    assert counts["customers"] == 1 and counts["enrollments"] == 1 and counts["runs_stopped"] == 1
    assert counts["messages"] >= 5 and counts["events"] >= 5 and counts["phone_suppressions"] == 1
    assert [(s.phone.startswith("hmac:"), s.reason) for s in suppressed] == [(True, "opted_out")]

    export = (await api.http.get("/customers/c1/export", headers=AUTH)).json()
    profile = export["profile"]
    assert (profile["phone"], profile["first_name"], profile["email"], profile["birthday"], profile["attributes"],
            profile["sms_consent"], profile["phone_status"]) == (None, None, None, None, {}, "opted_out", "erased")
    assert (profile["orders_count"], profile["total_spent"]) == (1, 40.0)
    assert not any(needle in json.dumps(export) for needle in PERSONAL)
    assert [e["properties"] for e in export["events"] if e["id"] == "order-1"] == [{"amount": 40, "gift": False}]
    assert all(m["body"] is None for m in export["messages"])
    # What they bought goes; that they spent 40 then stays, for revenue totals.
    assert export["purchase_items"] == []
    assert [(p["event_id"], p["total"]) for p in export["purchases"]] == [("order-1", 40.0)]
    assert export["consent_history"][-1]["status"] == "opted_out"  # the proof of consent is kept

    history = await histories(api.run.sim.env.client, db, "c1")
    assert "0-10?" in history and '"customer_id":"c1"' in history.replace(" ", "")  # the search sees payloads
    assert not any(needle in history for needle in (PHONE, PHONE.lstrip("+"), NAME, SURNAME, EMAIL, ADDRESS))


async def check_number_stays_suppressed(api: Api) -> None:
    """A STOP from the erased number (nobody's now) is answered and adds no plain row;
    the same number on a new customer, through the event path or an import: suppressed."""
    sent = len(api.sender.sent)
    assert (await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "STOP", "MessageSid": "SMstop"})
            ).status_code < 300
    await eventually(lambda: len(api.sender.sent) > sent)
    assert api.sender.sent[-1].to == PHONE  # STOP is answered
    with session_scope(api.run.sim.db, readonly=True) as session:
        rows = session.execute(select(PhoneSuppression.phone)).scalars().all()
    assert PHONE not in rows and len(rows) == 1 and rows[0].startswith("hmac:")

    await api.customer("c2", phone=PHONE, first_name=None, sms_consent="opted_in")
    await api.http.post("/events", headers=AUTH, json={"id": "promo-2", "type": "promo", "customer_id": "c2"})
    offer = await eventually(lambda: [m for m in api.run.messages("c2") if m.step_id == "offer"])
    assert [(m.status, m.reason) for m in offer] == [("skipped", "opted_out")]
    report = await import_customers(api.run.sim.router, csv_rows(io.StringIO(
        "id,phone,sms_consent,consent_text\nc3,+1 201 555 0123,opted_in,Texts please\n")), source="import:cli")
    assert [(r.customer_id, r.field) for r in report.rejected] == [("c3", "sms_consent")]
    assert "its customer was erased" in report.rejected[0].reason


__all__ = ["PHONE", "CustomerSpec", "aggregates", "check_erased", "check_number_stays_suppressed", "metrics_lines",
           "scan", "seed"]
