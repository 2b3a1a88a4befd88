"""Double opt-in for email through the real API and a real SMTP server (aiosmtpd): an
email opt-in under `email: {opt_in: double}` sends one confirmation email with a signed
link and leaves the customer `pending`; a GET of the link only shows a button; the POST
opts them in with evidence, once. Forged links change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from store.db import session_scope
from store.tables import ConsentRecord, Customer, Email
from tests.api.conftest import API_SETTINGS, AUTH, Api, serve_api
from tests.email.support import Relay, smtp_relay
from tests.runtime.support import write_journeys

OPT_IN = {"channel": "email", "status": "opted_in", "source": "newsletter_form", "disclosure": "Email me offers."}


@pytest.fixture
async def relayed(tmp_path: Path, env, db) -> AsyncIterator[tuple[Api, Relay]]:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {}, settings=API_SETTINGS + "email: {opt_in: double}\n")
    with smtp_relay() as (relay, sender):
        async with serve_api(env, db, catalog, email_sender=sender) as api:
            yield api, relay


def _customer(api: Api) -> Customer:
    with session_scope(api.run.sim.db, readonly=True) as session:
        found = session.get(Customer, "c1")
        assert found is not None
        return found


def _records(api: Api) -> list[ConsentRecord]:
    with session_scope(api.run.sim.db, readonly=True) as session:
        return list(session.exec(select(ConsentRecord).where(ConsentRecord.channel == "email")
                                 .order_by(col(ConsentRecord.id))).all())


def _link(relay: Relay) -> str:
    [mail] = relay.received
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(r"(/email/confirm\?t=[A-Za-z0-9_.-]+)", text)
    assert found, text
    return found.group(1)


async def test_an_email_opt_in_waits_for_the_link_in_the_confirmation_email(relayed: tuple[Api, Relay]) -> None:
    api, relay = relayed
    await api.customer("c1", phone="+12015550123", email="ada@example.com", email_consent="none")
    given = await api.http.post("/customers/c1/consent", headers=AUTH, json=OPT_IN)
    assert given.status_code == 200 and given.json() == {"email_consent": "pending"}
    assert len(relay.received) == 1
    mail = relay.received[0]
    assert mail["To"] == "ada@example.com" and "confirm" in mail["Subject"] and "List-Unsubscribe" not in mail
    assert relay.envelopes[0][1] == ["ada@example.com"]
    again = await api.http.post("/customers/c1/consent", headers=AUTH, json=OPT_IN)  # the form sent twice
    assert again.json() == {"email_consent": "pending"} and len(relay.received) == 1  # one email, not two
    link = _link(relay)
    assert "ada@example" not in link.lower() and "ada%40example" not in link.lower()  # never the address
    page = await api.http.get(link)  # a mail scanner following it
    assert page.status_code == 200 and 'method="post"' in page.text
    assert _customer(api).email_consent == "pending"
    done = await api.http.post(link)  # no Authorization header: the token is the authority
    assert done.status_code == 200 and "confirmed" in done.text
    assert (await api.http.post(link)).status_code == 200  # a second click
    assert _customer(api).email_consent == "opted_in"
    statuses = [(r.status, r.source) for r in _records(api)]
    assert statuses[-2:] == [("pending", "newsletter_form"), ("opted_in", "email_double_opt_in")]
    confirmed = _records(api)[-1]
    assert "Email me offers." in (confirmed.disclosure or "") and str(_records(api)[-2].id) in (confirmed.disclosure or "")
    with session_scope(api.run.sim.db, readonly=True) as session:
        [row] = session.exec(select(Email)).all()
    assert (row.status, row.purpose, row.provider_message_id) == ("sent", "transactional", mail["Message-ID"])
    # Opted in already: a new opt-in sends nothing.
    assert (await api.http.post("/customers/c1/consent", headers=AUTH, json=OPT_IN)).json() == {
        "email_consent": "opted_in"}
    assert len(relay.received) == 1


async def test_a_forged_link_or_one_overtaken_by_an_opt_out_changes_nothing(relayed: tuple[Api, Relay]) -> None:
    api, relay = relayed
    await api.customer("c1", phone="+12015550123", email="ada@example.com", email_consent="none")
    await api.http.post("/customers/c1/consent", headers=AUTH, json=OPT_IN)
    link = _link(relay)
    payload, _, signature = link.partition(".")
    forged = f"{payload}.{signature[::-1]}"
    assert (await api.http.get(forged)).status_code == 400
    assert (await api.http.post(forged)).status_code == 400
    assert _customer(api).email_consent == "pending"
    out = {"channel": "email", "status": "opted_out", "source": "preferences"}
    assert (await api.http.post("/customers/c1/consent", headers=AUTH, json=out)).json() == {
        "email_consent": "opted_out"}
    late = await api.http.post(link)  # the old link after an opt-out: it no longer opts in
    assert late.status_code == 200 and "Nothing to confirm" in late.text
    assert _customer(api).email_consent == "opted_out"


async def test_single_opt_in_is_the_default_and_sends_nothing(tmp_path: Path, env, db) -> None:  # type: ignore[no-untyped-def]
    catalog = write_journeys(tmp_path / "journeys", {}, settings=API_SETTINGS)
    with smtp_relay() as (relay, sender):
        async with serve_api(env, db, catalog, email_sender=sender) as api:
            await api.customer("c1", phone="+12015550123", email="ada@example.com", email_consent="none")
            given = await api.http.post("/customers/c1/consent", headers=AUTH, json=OPT_IN)
    assert given.json() == {"email_consent": "opted_in"} and relay.received == []

