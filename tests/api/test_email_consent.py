"""Email consent through the real API, kept apart from SMS consent; RFC 8058 one-click
unsubscribe: POST with the signed token (no auth) opts out with evidence, GET only asks."""

from __future__ import annotations

from sqlmodel import col, select

from core.customers import email_consent
from store.db import session_scope
from store.tables import ConsentRecord, Customer
from tests.api.conftest import AUTH, Api

ONE_CLICK = {"List-Unsubscribe": "One-Click"}  # the body RFC 8058 mail clients post


def _customer(api: Api) -> Customer:
    with session_scope(api.run.sim.db) as session:
        found = session.get(Customer, "c1")
        assert found is not None
        return found


def _email_records(api: Api) -> list[ConsentRecord]:
    with session_scope(api.run.sim.db) as session:
        return list(session.exec(select(ConsentRecord).where(ConsentRecord.channel == "email")
                                 .order_by(col(ConsentRecord.id))).all())


def _token(api: Api, customer_id: str = "c1") -> str:
    with session_scope(api.run.sim.db) as session:
        return email_consent.unsubscribe_token(session, customer_id, "m1")


async def test_email_consent_is_set_apart_from_sms_consent(api: Api) -> None:
    await api.customer("c1", phone="+12015550123", email="ada@example.com", email_consent="none")
    given = await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "channel": "email", "status": "opted_in", "source": "checkout_form", "disclosure": "Email me offers."})
    assert given.status_code == 200 and given.json() == {"email_consent": "opted_in"}
    profile = (await api.http.get("/customers/c1", headers=AUTH)).json()
    assert profile["email_consent"] == "opted_in" and profile["sms_consent"] == "opted_in"
    assert [(e["channel"], e["status"], e["source"]) for e in profile["consent_history"]][-1] == (
        "email", "opted_in", "checkout_form")
    no_text = await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "channel": "email", "status": "opted_in", "source": "form"})
    assert no_text.status_code == 422 and no_text.json()["detail"][0]["loc"] == ["body", "disclosure"]
    bad = await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "channel": "fax", "status": "opted_in", "source": "form", "disclosure": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "channel"]


async def test_an_opt_in_needs_an_address(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    response = await api.http.post("/customers/c1/consent", headers=AUTH, json={
        "channel": "email", "status": "opted_in", "source": "form", "disclosure": "Email me offers."})
    assert response.status_code == 409 and "email address" in response.json()["detail"]
    assert _customer(api).email_consent == "none"


async def test_one_click_unsubscribe_opts_out_of_email_only_with_evidence(api: Api) -> None:
    await api.customer("c1", phone="+12015550123", email="ada@example.com")  # both opted in
    token = _token(api)
    page = await api.http.get(f"/email/unsubscribe?t={token}")  # a mail scanner following the link
    assert page.status_code == 200 and 'method="post"' in page.text and "Unsubscribe" in page.text
    assert _customer(api).email_consent == "opted_in"  # a GET changes nothing
    done = await api.http.post(f"/email/unsubscribe?t={token}", data=ONE_CLICK)  # no Authorization header
    assert done.status_code == 200 and "unsubscribed" in done.text
    again = await api.http.post(f"/email/unsubscribe?t={token}", data=ONE_CLICK)  # a client's retry
    assert again.status_code == 200
    customer = _customer(api)
    assert (customer.email_consent, customer.sms_consent) == ("opted_out", "opted_in")
    [*_, record] = _email_records(api)
    assert (record.status, record.source) == ("opted_out", "email_unsubscribe") and "m1" in (record.disclosure or "")
    assert [r.status for r in _email_records(api)].count("opted_out") == 1


async def test_a_forged_or_cut_token_changes_nothing(api: Api) -> None:
    await api.customer("c1", phone="+12015550123", email="ada@example.com")
    await api.customer("c2", phone="+12015550124", email="bob@example.com")
    token = _token(api)
    payload, _, signature = token.partition(".")
    other = _token(api, "c2").partition(".")[0]
    for forged in (f"{other}.{signature}", payload + ".AAAAAAAAAAAAAAAAAAAAAA", token[:-4]):
        assert (await api.http.post(f"/email/unsubscribe?t={forged}", data=ONE_CLICK)).status_code == 400
        assert (await api.http.get(f"/email/unsubscribe?t={forged}")).status_code == 400
    assert (await api.http.post("/email/unsubscribe", data=ONE_CLICK)).status_code == 422  # no token at all
    assert _customer(api).email_consent == "opted_in"
