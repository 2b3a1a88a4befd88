"""`journeys customers export ID` and `journeys consent export`, on SQLite and PostgreSQL.

Consent goes through the real core path (core.customers.consent.record); the tables only a
journey, the link redirect or the loyalty job write (enrollments, messages, links, clicks,
decisions, events, points, coupons, segments, suppressions) are seeded as direct rows here.
The HTTP route and the same data written by real journeys: tests/api/test_customer_export.py.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli import consent as consent_cli
from cli import customers as customers_cli
from core.customers import consent
from core.customers.consent_export import consent_changes, parse_since
from store.db import session_scope
from store.tables import (
    AttributeChange,
    Click,
    Coupon,
    Customer,
    Decision,
    Enrollment,
    Event,
    Link,
    Message,
    PhoneSuppression,
    PointsEntry,
    Purchase,
    PurchaseItem,
    SegmentMembership,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PHONE = "+12015550123"


def cli() -> typer.Typer:
    app = typer.Typer()
    customers_cli.register(app)
    consent_cli.register(app)
    return app


def _env(db: Any) -> dict[str, str]:
    return {"JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False)}


def _seed(db: Any) -> None:
    with session_scope(db) as session:
        session.add(Customer(id="c1", phone=PHONE, first_name="Ada", email="ada@example.com", timezone="UTC",
                             attributes={"shoe_size": 38}, created_at=T0))
        session.add(Customer(id="c2", phone="+12015550199", created_at=T0))  # someone else: must not leak
    consent.record(db, "c1", "opted_in", source="checkout_form", disclosure="Texts from Nordic Shoes", at=T0)
    consent.record(db, "c1", "opted_out", source="sms_keyword", at=T0 + timedelta(days=2))
    consent.record(db, "c2", "opted_in", source="import", disclosure="Import", at=T0 + timedelta(days=1))
    with session_scope(db) as session:
        for cid, run in (("c1", "run1"), ("c2", "run2")):
            session.add(Enrollment(id=run, journey_id="survey", journey_version="v1", customer_id=cid,
                                   workflow_id=f"journey:survey:{run}", status="ended", outcome="answered",
                                   entered_at=T0, ended_at=T0 + timedelta(hours=1)))
            session.add(Message(id=f"m-{run}", key=f"{run}:nps", customer_id=cid, enrollment_id=run,
                                journey_id="survey", step_id="nps", body=f"0-10? {cid}", status="delivered",
                                created_at=T0, sent_at=T0))
            session.add(Link(code=f"L{run}", message_key=f"{run}:nps", url="https://shop.example/r", customer_id=cid,
                             enrollment_id=run, journey_id="survey", step_id="nps", created_at=T0))
            session.add(Decision(key=f"{run}:nps:answer", value={"answer": 9}, decided_at=T0))
            session.add(Event(id=f"inbound:{run}", customer_id=cid, type="sms_replied", occurred_at=T0,
                              received_at=T0, properties={"body": "9"}, source="twilio"))
            session.add(PointsEntry(key=f"{cid}:signup", customer_id=cid, points=50, reason="signup", occurred_at=T0))
            session.add(Coupon(code=f"C{cid}", series="welcome", key=f"{run}:coupon", customer_id=cid, issued_at=T0))
            session.add(SegmentMembership(customer_id=cid, segment="vip", entered_at=T0))
            session.add(AttributeChange(key=f"{run}:set", customer_id=cid, values={"vip": True}, changed_at=T0))
        session.add(Event(id="order-1", customer_id="c1", type="purchase", occurred_at=T0, received_at=T0,
                          properties={"amount": 40}))
        session.add(Purchase(event_id="order-1", customer_id="c1", occurred_at=T0, total=40))
        session.add(PurchaseItem(event_id="order-1", line=0, customer_id="c1", category="shoes", occurred_at=T0))
        session.add(PurchaseItem(event_id="order-2", line=0, customer_id="c2", category="socks", occurred_at=T0))
        session.add(Decision(key="run10:nps:answer", value={"answer": 1}, decided_at=T0))  # a prefix, not c1's run
        session.add(PhoneSuppression(phone=PHONE, reason="opted_out", source="sms_keyword", created_at=T0))
    with session_scope(db) as session:
        session.add(Click(link_code="Lrun1", event_id="click:Lrun1", clicked_at=T0 + timedelta(minutes=5)))
        session.add(Click(link_code="Lrun1", bot="head", clicked_at=T0 + timedelta(minutes=6)))
        session.add(Click(link_code="Lrun2", event_id="click:Lrun2", clicked_at=T0))


def test_customer_export_holds_every_section_and_only_their_rows(db) -> None:
    _seed(db)
    done = CliRunner().invoke(cli(), ["customers", "export", "c1"], env=_env(db))
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["schema_version"] == 1 and doc["customer_id"] == "c1" and doc["generated_at"].endswith("Z")
    profile = doc["profile"]
    assert (profile["phone"], profile["email"], profile["first_name"], profile["attributes"], profile["sms_consent"]
            ) == (PHONE, "ada@example.com", "Ada", {"shoe_size": 38}, "opted_out")
    assert profile["created_at"] == "2026-03-01T12:00:00Z"
    assert [(r["status"], r["source"], r["disclosure"], r["occurred_at"]) for r in doc["consent_history"]] == [
        ("opted_in", "checkout_form", "Texts from Nordic Shoes", "2026-03-01T12:00:00Z"),
        ("opted_out", "sms_keyword", None, "2026-03-03T12:00:00Z")]
    assert [(m["body"], m["status"], m["journey_id"], m["step_id"], m["sent_at"]) for m in doc["messages"]] == [
        ("0-10? c1", "delivered", "survey", "nps", "2026-03-01T12:00:00Z")]
    assert [(c["link_code"], c["bot"], c["url"]) for c in doc["clicks"]] == [
        ("Lrun1", None, "https://shop.example/r"), ("Lrun1", "head", "https://shop.example/r")]
    assert [e["id"] for e in doc["answers"]] == ["inbound:run1"]
    assert [d["key"] for d in doc["decisions"]] == ["run1:nps:answer"]
    assert sorted(e["id"] for e in doc["events"]) == ["inbound:run1", "order-1"]
    assert [(p["points"], p["reason"]) for p in doc["points_ledger"]] == [(50, "signup")]
    assert [c["code"] for c in doc["coupons"]] == ["Cc1"]
    assert [(p["event_id"], p["total"]) for p in doc["purchases"]] == [("order-1", 40.0)]
    assert [i["category"] for i in doc["purchase_items"]] == ["shoes"]
    assert [s["segment"] for s in doc["segments"]] == ["vip"]
    assert [(j["id"], j["journey_id"], j["outcome"]) for j in doc["journeys"]] == [("run1", "survey", "answered")]
    assert [a["values"] for a in doc["attribute_changes"]] == [{"vip": True}]
    assert [(s["phone"], s["reason"]) for s in doc["phone_suppressions"]] == [(PHONE, "opted_out")]
    assert [link["code"] for link in doc["links"]] == ["Lrun1"]
    assert "c2" not in done.output and "+12015550199" not in done.output


def test_customer_export_of_an_unknown_customer_fails_clearly(db) -> None:
    done = CliRunner().invoke(cli(), ["customers", "export", "nobody"], env=_env(db))
    assert done.exit_code == 1 and "no customer 'nobody'" in done.output


def test_consent_export_json_lines_csv_and_since(db) -> None:
    _seed(db)
    env = _env(db)
    lines = CliRunner().invoke(cli(), ["consent", "export"], env=env)
    assert lines.exit_code == 0, lines.output
    rows = [json.loads(line) for line in lines.output.splitlines()]
    assert [(r["customer_id"], r["status"], r["occurred_at"]) for r in rows] == [
        ("c1", "opted_in", "2026-03-01T12:00:00Z"), ("c2", "opted_in", "2026-03-02T12:00:00Z"),
        ("c1", "opted_out", "2026-03-03T12:00:00Z")]
    assert set(rows[0]) == {"customer_id", "status", "source", "disclosure", "occurred_at", "recorded_at"}
    assert rows[0]["disclosure"] == "Texts from Nordic Shoes" and rows[0]["source"] == "checkout_form"
    as_csv = CliRunner().invoke(cli(), ["consent", "export", "--csv", "--since", "2026-03-02"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.reader(io.StringIO(as_csv.output)))
    assert table[0] == ["customer_id", "status", "source", "disclosure", "occurred_at", "recorded_at"]
    assert [(r[0], r[1], r[4]) for r in table[1:]] == [("c2", "opted_in", "2026-03-02T12:00:00Z"),
                                                       ("c1", "opted_out", "2026-03-03T12:00:00Z")]
    # a datetime with its zone: 13:00+01:00 is 12:00 UTC, the c2 record itself is included
    zoned = CliRunner().invoke(cli(), ["consent", "export", "--since", "2026-03-02T13:00:00+01:00"], env=env)
    assert [json.loads(line)["customer_id"] for line in zoned.output.splitlines()] == ["c2", "c1"]
    naive = CliRunner().invoke(cli(), ["consent", "export", "--since", "2026-03-02T13:00"], env=env)
    assert naive.exit_code == 2 and "no time zone" in naive.output
    bad = CliRunner().invoke(cli(), ["consent", "export", "--since", "yesterday"], env=env)
    assert bad.exit_code == 2 and "not an ISO date" in bad.output


def test_consent_changes_page_through_ties_in_order(db) -> None:
    # Several records at the same moment straddle page boundaries: none lost, none repeated.
    with session_scope(db) as session:
        session.add(Customer(id="c1", created_at=T0))
    statuses = ["opted_in", "opted_out"] * 4
    for i, status in enumerate(statuses):
        consent.record(db, "c1", status, source=f"s{i}", disclosure="d", at=T0 + timedelta(minutes=i // 3))
    rows = list(consent_changes(db, page=2))
    assert [r["source"] for r in rows] == [f"s{i}" for i in range(len(statuses))]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
    ("2026-03-02T09:30:00Z", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),
    ("2026-03-02T09:30:00-05:00", datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),
])
def test_since_parses_dates_as_utc_midnight_and_datetimes_with_zones(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected
