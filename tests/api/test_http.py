"""The HTTP edge through the real application: auth, idempotency, validation errors,
Twilio webhooks (signatures, keywords, replies, receipts), tracked links, health."""

from __future__ import annotations

from sqlmodel import select

from store.db import session_scope
from store.tables import Customer, Event, Link, Message
from tests.api.conftest import AUTH, Api, eventually


def _customer(api: Api, customer_id: str = "c1") -> Customer:
    with session_scope(api.run.sim.db) as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def _events(api: Api, event_type: str) -> list[Event]:
    with session_scope(api.run.sim.db) as session:
        return list(session.exec(select(Event).where(Event.type == event_type)).all())


def _a_text_recorded_sent(api: Api) -> bool:
    """The provider is called before the row says `sent`: wait for the row."""
    with session_scope(api.run.sim.db) as session:
        return session.exec(select(Message).where(Message.status == "sent")).first() is not None


PURCHASE = {"id": "order-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": 40}}


async def test_events_need_a_valid_bearer_token(api: Api) -> None:
    assert (await api.http.post("/events", json=PURCHASE)).status_code == 401
    wrong = await api.http.post("/events", json=PURCHASE, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert _events(api, "purchase") == []


async def test_the_same_event_twice_has_one_effect(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    first = await api.http.post("/events", json=PURCHASE, headers=AUTH)
    assert first.status_code == 202
    assert first.json()["results"][0]["started"] == ["survey"]
    again = await api.http.post("/events", json=[PURCHASE], headers=AUTH)
    assert again.status_code == 202 and again.json() == {
        "accepted": 0, "duplicates": 1,
        "results": [{"id": "order-1", "duplicate": True, "started": [], "signalled": []}]}
    customer = _customer(api)
    assert customer.orders_count == 1 and customer.total_spent == 40


async def test_invalid_events_get_a_422_naming_the_field(api: Api) -> None:
    bad_id = await api.http.post("/events", json={**PURCHASE, "customer_id": "ana@example.com"}, headers=AUTH)
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["loc"] == ["body", "customer_id"]
    batch = await api.http.post("/events", json=[PURCHASE, {**PURCHASE, "id": "x", "type": "Bad Type"}],
                                headers=AUTH)
    assert batch.status_code == 422 and batch.json()["detail"][0]["loc"] == ["body", 1, "type"]
    missing = await api.http.post("/events", json={"type": "purchase"}, headers=AUTH)
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {("body", "id"), ("body", "customer_id")}
    assert _events(api, "purchase") == []  # nothing of a bad batch is taken


async def test_profiles_store_e164_and_explain_bad_numbers(api: Api) -> None:
    bad = await api.http.put("/customers/c9", json={"phone": "555-12"}, headers=AUTH)
    assert bad.status_code == 422
    [error] = bad.json()["detail"]
    assert error["loc"] == ["body", "phone"] and "short" in error["msg"]
    zone = await api.http.put("/customers/c9", json={"timezone": "Mars/Olympus"}, headers=AUTH)
    assert zone.status_code == 422 and zone.json()["detail"][0]["loc"] == ["body", "timezone"]
    ok = await api.http.put("/customers/c9", json={"phone": "(201) 555-0123", "first_name": "Ana",
                                                   "timezone": "Europe/Stockholm"}, headers=AUTH)
    assert ok.status_code == 200
    profile = (await api.http.get("/customers/c9", headers=AUTH)).json()
    assert profile["phone"] == "+12015550123" and profile["first_name"] == "Ana"
    assert profile["sms_consent"] == "none" and profile["active_journeys"] == []
    assert (await api.http.get("/customers/nobody", headers=AUTH)).status_code == 404


async def test_double_opt_in_end_to_end(api: Api) -> None:
    await api.http.put("/customers/c1", json={"phone": "+12015550123"}, headers=AUTH)
    consent = await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "status": "opted_in", "source": "checkout", "disclosure": "Text me offers. Reply STOP to cancel."})
    assert consent.json() == {"sms_consent": "pending"}
    assert [m.body for m in api.sender.sent] == [api.run.sim.catalog.settings.replies.confirm]
    yes = await api.twilio("/twilio/inbound", {"From": "+12015550123", "To": "+15550000000", "Body": " yes ",
                                               "MessageSid": "SMyes"})
    assert yes.status_code == 200 and "<Response>" in yes.text
    assert _customer(api).sms_consent == "opted_in"
    result = await api.run.timeline("welcome", customer="c1")  # opted_in started the welcome journey
    assert result["outcome"] == "completed"
    bodies = [m.body for m in api.sender.sent]
    assert bodies[1] == api.run.sim.catalog.settings.replies.welcome and bodies[2] == "Welcome aboard"
    profile = (await api.http.get("/customers/c1", headers=AUTH)).json()
    assert [e["status"] for e in profile["consent_history"]] == ["pending", "opted_in"]
    assert profile["consent_history"][0]["disclosure"] == "Text me offers. Reply STOP to cancel."


async def test_opt_in_needs_its_evidence(api: Api) -> None:
    response = await api.http.post("/customers/c1/consent", json={"status": "opted_in", "source": "form"},
                                   headers=AUTH)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "disclosure"]


async def test_forged_webhooks_change_nothing(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    stop = {"From": "+12015550123", "Body": "STOP", "MessageSid": "SM1"}
    assert (await api.twilio("/twilio/inbound", stop, forge=True)).status_code == 403
    unsigned = await api.http.post("/twilio/inbound", data=stop)
    assert unsigned.status_code == 403
    assert _customer(api).sms_consent == "opted_in" and api.sender.sent == []
    # Signed for another URL (a replayed signature) is forged too.
    other = api.signed("/twilio/status", stop)
    assert (await api.http.post("/twilio/inbound", data=stop, headers=other)).status_code == 403


async def test_stop_in_any_case_with_spaces_opts_out_everywhere_and_is_answered_once(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    assert (await api.http.post("/events", json=PURCHASE, headers=AUTH)).status_code == 202
    await eventually(lambda: _a_text_recorded_sent(api))  # the survey question went out
    stop = {"From": "+12015550123", "Body": "  sToP ", "MessageSid": "SMstop"}
    for _ in range(2):  # Twilio retries webhooks: one opt-out, one reply
        assert (await api.twilio("/twilio/inbound", stop)).status_code == 200
    assert _customer(api).sms_consent == "opted_out"
    result = await api.run.timeline("survey", customer="c1")
    texts = [e for e in result["timeline"] if e["action"] == "sms"]
    assert texts[-1]["step"] == "review" and texts[-1]["reason"] == "opted_out"
    stop_reply = api.run.sim.catalog.settings.replies.stop
    assert [m.body for m in api.sender.sent].count(stop_reply) == 1
    assert len(_events(api, "opted_out")) == 1


async def test_stop_from_an_unknown_number_is_answered_and_remembered(api: Api) -> None:
    assert (await api.twilio("/twilio/inbound", {"From": "+12015550199", "Body": "opt out",
                                                 "MessageSid": "SMu"})).status_code == 200
    assert [m.to for m in api.sender.sent] == ["+12015550199"]
    await api.http.put("/customers/c5", json={"phone": "+12015550199"}, headers=AUTH)
    # The suppression outlives the unknown: a customer who later gets this number is not
    # texted on it.
    from core.sms.rules import phone as phone_rule

    with session_scope(api.run.sim.db) as session:
        customer = session.get(Customer, "c5")
        assert customer is not None
        assert phone_rule(session, customer).skip == "opted_out"


async def test_help_is_answered(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    await api.twilio("/twilio/inbound", {"From": "+12015550123", "Body": "Help", "MessageSid": "SMh"})
    assert [m.body for m in api.sender.sent] == [api.run.sim.catalog.settings.replies.help]


async def test_a_reply_reaches_the_ask_and_a_click_reaches_clicked(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    await api.http.post("/events", json=PURCHASE, headers=AUTH)
    await eventually(lambda: _a_text_recorded_sent(api))
    await api.twilio("/twilio/inbound", {"From": "+12015550123", "Body": "9", "MessageSid": "SMr"})

    def review_link() -> Link | None:
        with session_scope(api.run.sim.db) as session:
            return session.exec(select(Link).where(Link.step_id == "review")).first()

    link = await eventually(review_link)
    assert link is not None
    click = await api.http.get(f"/l/{link.code}", follow_redirects=False)
    assert click.status_code == 302 and click.headers["location"] == "https://shop.example/review"
    result = await api.run.timeline("survey", customer="c1")
    assert result["outcome"] == "clicked"
    assert next(e for e in result["timeline"] if e["action"] == "answer")["value"] == 9
    unknown = await api.http.get("/l/nothere")
    assert unknown.status_code == 404 and "does not work" in unknown.text


async def test_delivery_receipts_are_monotonic_and_idempotent(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    await api.http.post("/events", json=PURCHASE, headers=AUTH)
    [message] = await eventually(lambda: [m for m in api.run.messages("c1") if m.provider_message_id])
    sid = message.provider_message_id
    for status in ("sent", "delivered", "sent", "delivered", "queued"):  # out of order, repeated
        response = await api.twilio(f"/twilio/status?m={message.id}", {"MessageSid": sid, "MessageStatus": status})
        assert response.status_code == 204
    [message] = [m for m in api.run.messages("c1") if m.id == message.id]
    assert message.status == "delivered" and message.provider_status == "delivered"
    assert len(_events(api, "sms_delivered")) == 1
    failed_late = await api.twilio("/twilio/status", {"MessageSid": sid, "MessageStatus": "failed",
                                                      "ErrorCode": "30003"})
    assert failed_late.status_code == 204
    assert [m.status for m in api.run.messages("c1") if m.id == message.id] == ["delivered"]


async def test_receipt_errors_opt_out_or_retire_the_number(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    await api.customer("c2", phone="+12015550124")
    await api.http.post("/events", json=[PURCHASE, {**PURCHASE, "id": "order-2", "customer_id": "c2"}], headers=AUTH)

    def both_recorded() -> dict | None:  # the provider is called before the row gets its id
        found = {m.customer_id: m for c in ("c1", "c2") for m in api.run.messages(c) if m.provider_message_id}
        return found if len(found) == 2 else None

    by_customer = await eventually(both_recorded)
    await api.twilio("/twilio/status", {"MessageSid": by_customer["c1"].provider_message_id or "",
                                        "MessageStatus": "failed", "ErrorCode": "21610"})
    await api.twilio("/twilio/status", {"MessageSid": by_customer["c2"].provider_message_id or "",
                                        "MessageStatus": "undelivered", "ErrorCode": "30006"})
    assert _customer(api, "c1").sms_consent == "opted_out"
    assert _customer(api, "c2").phone_status == "unusable"
    assert len(_events(api, "sms_failed")) == 2


async def test_a_late_receipt_confirms_an_unconfirmed_message(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    with session_scope(api.run.sim.db) as session:
        from core.clock import utcnow

        session.add(Message(id="0123456789abcdef0123456789abcdef", key="k-1", customer_id="c1", status="unconfirmed", created_at=utcnow()))
    response = await api.twilio("/twilio/status?m=0123456789abcdef0123456789abcdef", {"MessageSid": "SMlate", "MessageStatus": "delivered"})
    assert response.status_code == 204
    [message] = api.run.messages("c1")
    assert message.status == "delivered" and message.provider_message_id == "SMlate"


async def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = (await api.http.get("/metrics")).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_health_and_metrics(api: Api) -> None:
    health = await api.http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    received = ("journeys_events_received_total", (("duplicate", "False"), ("type", "purchase")))
    handled = ("journeys_event_handling_seconds_count", ())
    before = await _samples(api)  # counters are per process: compare, do not assume zero
    await api.customer("c1", phone="+12015550123")
    await api.http.post("/events", json=PURCHASE, headers=AUTH)
    await eventually(lambda: _a_text_recorded_sent(api))
    after = await _samples(api)
    assert after[received] - before.get(received, 0) == 1
    assert after[handled] - before.get(handled, 0) == 1
    # Counts from the database cover every process: exact.
    assert after[("journeys_started_total", (("journey", "survey"),))] == 1
    assert after[("journeys_messages", (("purpose", "marketing"), ("status", "sent")))] == 1


async def test_the_api_docs_work_offline(api: Api) -> None:
    """/docs and /redoc load their scripts and styles from this service: no CDN."""
    import re

    for page in ("/docs", "/redoc"):
        html = (await api.http.get(page)).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets, page
        for url in assets:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = await api.http.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert (await api.http.get("/openapi.json")).json()["paths"]["/events"]
