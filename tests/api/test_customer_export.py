"""GET /customers/{id}/export: the token, and a document built from what real journeys wrote.

Profile, consent (double opt-in with its YES), messages, the survey's answer, the review
link's click and the events all come through the API, the Twilio webhook and the journeys;
points, a coupon and a segment membership (written by the loyalty job or a journey step
not in this catalog) are direct rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from store.db import session_scope
from store.tables import Coupon, Link, PointsEntry, SegmentMembership
from tests.api.conftest import AUTH, Api, eventually

PHONE = "+12015550123"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_the_export_needs_the_token_and_holds_what_the_journeys_wrote(api: Api) -> None:
    assert (await api.http.put("/customers/c1", headers=AUTH, json={
        "phone": "+1 201 555 0123", "email": "ada@example.com", "attributes": {"shoe_size": 38}})).status_code == 200
    await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "status": "opted_in", "source": "checkout", "disclosure": "Text me offers. Reply STOP to cancel."})
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "YES", "MessageSid": "SMyes"})
    await api.http.post("/events", headers=AUTH, json={"id": "order-1", "type": "purchase", "customer_id": "c1",
                                                       "properties": {"amount": 40}})
    await eventually(lambda: any(m.body == "0-10?" for m in api.sender.sent))
    await api.twilio("/twilio/inbound", {"From": PHONE, "Body": "9", "MessageSid": "SMr"})

    def review_link() -> Link | None:
        with session_scope(api.run.sim.db) as session:
            return session.exec(select(Link).where(Link.step_id == "review")).first()

    link = await eventually(review_link)
    assert link is not None
    assert (await api.http.get(f"/l/{link.code}", follow_redirects=False)).status_code == 302
    assert (await api.run.timeline("survey", customer="c1"))["outcome"] == "clicked"
    with session_scope(api.run.sim.db) as session:
        session.add(PointsEntry(key="c1:signup", customer_id="c1", points=50, reason="signup", occurred_at=T0))
        session.add(Coupon(code="WELCOME1", series="welcome", key="x:coupon", customer_id="c1", issued_at=T0))
        session.add(SegmentMembership(customer_id="c1", segment="vip", entered_at=T0))

    assert (await api.http.get("/customers/c1/export")).status_code == 401
    assert (await api.http.get("/customers/c1/export", headers={"Authorization": "Bearer nope"})).status_code == 403
    unknown = await api.http.get("/customers/nobody/export", headers=AUTH)
    assert unknown.status_code == 404 and "nobody" in unknown.text
    response = await api.http.get("/customers/c1/export", headers=AUTH)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["schema_version"] == 1 and doc["generated_at"].endswith("Z")
    assert (doc["profile"]["phone"], doc["profile"]["email"], doc["profile"]["attributes"],
            doc["profile"]["sms_consent"]) == (PHONE, "ada@example.com", {"shoe_size": 38}, "opted_in")
    assert [(r["status"], r["disclosure"]) for r in doc["consent_history"]] == [
        ("pending", "Text me offers. Reply STOP to cancel."), ("opted_in", "customer texted 'YES'")]
    bodies = [m["body"] for m in doc["messages"]]
    assert "0-10?" in bodies and "Welcome aboard" in bodies and any("/l/" in (b or "") for b in bodies)
    survey = next(m for m in doc["messages"] if m["body"] == "0-10?")
    assert (survey["journey_id"], survey["step_id"]) == ("survey", "nps") and survey["sent_at"].endswith("Z")
    assert [(c["url"], c["step_id"]) for c in doc["clicks"]] == [("https://shop.example/review", "review")]
    assert [a["properties"].get("body") for a in doc["answers"]] == ["9"]
    assert any(d["value"].get("value") == 9 or d["value"].get("answer") == 9 for d in doc["decisions"]), \
        doc["decisions"]
    assert {"purchase", "sms_replied", "link_clicked", "opted_in"} <= {e["type"] for e in doc["events"]}
    assert sorted(j["journey_id"] for j in doc["journeys"]) == ["survey", "welcome"]
    # 40 points from the purchase (the shop's loyalty rules), 50 from the seeded row
    assert (sorted(p["points"] for p in doc["points_ledger"]), [c["code"] for c in doc["coupons"]],
            [s["segment"] for s in doc["segments"]]) == ([40, 50], ["WELCOME1"], ["vip"])
    assert doc["phone_suppressions"] == []
