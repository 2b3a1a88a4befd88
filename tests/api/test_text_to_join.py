"""Text-to-join: a `text_to_join` keyword texted to Twilio's inbound webhook signs the
number up (creating its customer) through the API's consent path: pending and the
confirm text under double opt-in, then YES, the welcome text and the welcome journey;
the welcome at once under single opt-in. Evidence, replays, races, opted-out and
unusable numbers, and `journeys inbound` / `journeys consent export` on the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import col, select
from typer.testing import CliRunner

from cli.main import app as cli_app
from core.clock import utcnow
from core.customers import suppressions
from core.sms.inbound import HELP, OPT_IN, OPT_OUT
from language.config import RESERVED_KEYWORDS, Settings
from store.db import session_scope
from store.tables import ConsentRecord, Customer, InboundMessage, Message, PhoneSuppression
from tests.api.conftest import API_SETTINGS, TOKEN, WELCOME, Api, eventually, serve_api
from tests.runtime.support import write_journeys

NUMBER = "+12015550188"
JOIN_SETTINGS = API_SETTINGS + "text_to_join: {keywords: [JOIN, ' shoes ']}\n"  # opt_in: double
SINGLE_SETTINGS = JOIN_SETTINGS.replace("opt_in: {mode: double}", "opt_in: {mode: single}")


@asynccontextmanager
async def _api(tmp_path: Path, env: Any, db: Any, settings: str) -> AsyncIterator[Api]:
    catalog = write_journeys(tmp_path / "journeys", {"welcome": WELCOME}, settings=settings)
    async with serve_api(env, db, catalog) as api:
        yield api


@pytest.fixture
async def api(tmp_path: Path, env, db) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    async with _api(tmp_path, env, db, JOIN_SETTINGS) as api:
        yield api


async def _text(api: Api, body: str, sid: str, number: str = NUMBER) -> None:
    response = await api.twilio("/twilio/inbound", {"From": number, "Body": body, "MessageSid": sid})
    assert response.status_code == 200 and "<Response>" in response.text


def _customers(api: Api, number: str = NUMBER) -> list[Customer]:
    with session_scope(api.run.sim.db) as session:
        return list(session.exec(select(Customer).where(Customer.phone == number)).all())


def _evidence(api: Api, customer_id: str) -> list[ConsentRecord]:
    with session_scope(api.run.sim.db) as session:
        return list(session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
                                 .order_by(col(ConsentRecord.id))).all())


def _received_at(api: Api, sid: str) -> Any:
    with session_scope(api.run.sim.db) as session:
        found = session.get(InboundMessage, sid)
        assert found is not None
        return found.received_at


def _bodies(api: Api, number: str = NUMBER) -> list[str]:
    return [m.body for m in api.sender.sent if m.to == number]


async def test_join_from_an_unknown_number_signs_it_up_and_yes_opts_it_in(api: Api) -> None:
    replies = api.run.sim.catalog.settings.replies
    await _text(api, "JOIN", "SMjoin")
    [customer] = _customers(api)
    # An opaque id, never the number; the source of the sign-up is kept on the profile.
    assert customer.id.startswith("sms-") and "5550188" not in customer.id
    assert customer.sms_consent == "pending" and customer.attributes == {"signup_source": "sms_keyword:JOIN"}
    assert _bodies(api) == [replies.confirm]
    [pending] = _evidence(api, customer.id)
    assert (pending.status, pending.source, pending.disclosure) == ("pending", "sms_keyword:JOIN", replies.confirm)
    assert pending.occurred_at == _received_at(api, "SMjoin")
    # Twilio delivers the webhook again: nothing is created or sent twice.
    await _text(api, "JOIN", "SMjoin")
    assert len(_customers(api)) == 1 and _bodies(api) == [replies.confirm] and len(_evidence(api, customer.id)) == 1

    await _text(api, "yes", "SMyes")
    assert _customers(api)[0].sms_consent == "opted_in"
    result = await api.run.timeline("welcome", customer=customer.id)  # the opted_in event started it
    assert result["outcome"] == "completed"
    assert _bodies(api) == [replies.confirm, replies.welcome, "Welcome aboard"]
    assert [(e.status, e.source) for e in _evidence(api, customer.id)] == [
        ("pending", "sms_keyword:JOIN"), ("opted_in", "sms_keyword")]
    profile = (await api.http.get(f"/customers/{customer.id}", headers={"Authorization": f"Bearer {TOKEN}"})).json()
    assert [e["status"] for e in profile["consent_history"]] == ["pending", "opted_in"]

    # Subscribed already: JOIN is answered with the welcome text; consent and evidence stay.
    await _text(api, "join", "SMagain")
    assert _bodies(api)[-1] == replies.welcome and len(_bodies(api)) == 4
    assert len(_evidence(api, customer.id)) == 2 and _customers(api)[0].sms_consent == "opted_in"


@pytest.mark.parametrize("body", ["join", " Join ", "J O I N", "SHOES", " shoes\n"])
async def test_the_keywords_in_any_case_and_spacing_and_the_shops_own(api: Api, body: str) -> None:
    await _text(api, body, "SMvariant")
    [customer] = _customers(api)
    keyword = "".join(body.split()).upper()
    assert [(e.status, e.source) for e in _evidence(api, customer.id)] == [("pending", f"sms_keyword:{keyword}")]
    assert _bodies(api) == [api.run.sim.catalog.settings.replies.confirm]


async def test_a_keyword_inside_a_sentence_or_an_unset_keyword_is_no_sign_up(api: Api) -> None:
    await _text(api, "I want to JOIN", "SM1")
    await _text(api, "JOIN!", "SM2")
    await _text(api, "SUBSCRIBE", "SM3")  # not configured here
    assert _customers(api) == [] and api.sender.sent == []


async def test_a_pending_number_gets_the_confirm_again_at_most_once_an_hour(api: Api) -> None:
    await _text(api, "JOIN", "SM1")
    await _text(api, "JOIN", "SM2")
    [customer] = _customers(api)
    assert _bodies(api) == [api.run.sim.catalog.settings.replies.confirm]
    assert len(_evidence(api, customer.id)) == 1
    with session_scope(api.run.sim.db) as session:  # the confirm went out over an hour ago
        for message in session.exec(select(Message).where(Message.customer_id == customer.id)).all():
            message.created_at = message.created_at - timedelta(hours=2)
            session.add(message)
    await _text(api, "JOIN", "SM3")
    assert _bodies(api) == [api.run.sim.catalog.settings.replies.confirm] * 2
    assert len(_evidence(api, customer.id)) == 1  # the same statement again adds no evidence


async def test_join_after_stop_is_a_new_consent_confirmed_by_yes(api: Api) -> None:
    replies = api.run.sim.catalog.settings.replies
    await api.customer("c1", phone=NUMBER)
    await _text(api, "STOP", "SMstop")
    await _text(api, "JOIN", "SMjoin")
    assert _customers(api)[0].sms_consent == "pending"
    assert _bodies(api) == [replies.stop, replies.confirm]
    await _text(api, "YES", "SMyes")
    assert _customers(api)[0].sms_consent == "opted_in"
    assert [(e.status, e.source) for e in _evidence(api, "c1")][-3:] == [
        ("opted_out", "sms_keyword"), ("pending", "sms_keyword:JOIN"), ("opted_in", "sms_keyword")]
    await api.run.timeline("welcome", customer="c1")
    assert _bodies(api) == [replies.stop, replies.confirm, replies.welcome, "Welcome aboard"]


async def test_a_join_received_before_the_latest_stop_cannot_undo_it(api: Api) -> None:
    """Its first delivery came before the STOP but never finished: delivered again after
    the STOP, it is older, and loses (no consent change, no reply, no evidence)."""
    await api.customer("c1", phone=NUMBER)
    with session_scope(api.run.sim.db) as session:
        session.add(InboundMessage(sid="SMearly", received_at=utcnow() - timedelta(seconds=30)))
    await _text(api, "STOP", "SMstop")
    evidence, sent = len(_evidence(api, "c1")), len(api.sender.sent)
    await _text(api, "JOIN", "SMearly")
    assert _customers(api)[0].sms_consent == "opted_out"
    assert len(_evidence(api, "c1")) == evidence and len(api.sender.sent) == sent


async def test_join_from_a_suppressed_unknown_number_needs_yes_to_lift_the_suppression(api: Api) -> None:
    await _text(api, "STOP", "SMstop")  # nobody's number: remembered as suppressed
    await _text(api, "JOIN", "SMjoin")
    [customer] = _customers(api)
    assert customer.sms_consent == "pending"
    with session_scope(api.run.sim.db) as session:
        assert session.get(PhoneSuppression, NUMBER) is not None  # a JOIN alone does not lift it
    await _text(api, "YES", "SMyes")
    with session_scope(api.run.sim.db) as session:
        assert session.get(PhoneSuppression, NUMBER) is None
    await api.run.timeline("welcome", customer=customer.id)
    assert _bodies(api)[-1] == "Welcome aboard"


async def test_an_erased_numbers_join_is_a_new_consent_its_yes_lifts_the_hashed_opt_out(api: Api) -> None:
    with session_scope(api.run.sim.db) as session:  # what erasure leaves of a number: its keyed hash
        suppressions.keep_only_hashed(session, NUMBER, utcnow(), source="erasure:cli")
    await _text(api, "JOIN", "SMjoin")
    [customer] = _customers(api)
    assert customer.sms_consent == "pending"
    assert _bodies(api) == [api.run.sim.catalog.settings.replies.confirm]
    with session_scope(api.run.sim.db) as session:
        assert suppressions.find(session, NUMBER) is not None  # the JOIN alone lifts nothing
    await _text(api, "YES", "SMyes")
    with session_scope(api.run.sim.db) as session:
        assert suppressions.find(session, NUMBER) is None and session.exec(select(PhoneSuppression)).all() == []
    await api.run.timeline("welcome", customer=customer.id)
    assert _bodies(api)[-1] == "Welcome aboard"


async def test_an_unusable_number_is_not_signed_up(api: Api) -> None:
    with session_scope(api.run.sim.db) as session:
        session.add(PhoneSuppression(phone=NUMBER, reason="unusable", source="provider:21614", created_at=utcnow()))
    await _text(api, "JOIN", "SMjoin")
    assert _customers(api) == [] and api.sender.sent == []


async def test_two_messages_racing_from_one_unknown_number_make_one_customer(api: Api) -> None:
    await asyncio.gather(*(_text(api, "JOIN", f"SMrace{n}") for n in range(4)))
    [customer] = _customers(api)
    assert customer.sms_consent == "pending"
    assert [e.status for e in _evidence(api, customer.id)] == ["pending"]


async def test_single_opt_in_sends_the_welcome_and_opts_in_at_once(tmp_path: Path, env, db) -> None:  # type: ignore[no-untyped-def]
    async with _api(tmp_path, env, db, SINGLE_SETTINGS) as api:
        replies = api.run.sim.catalog.settings.replies
        await _text(api, "STOP", "SMstop")  # nobody's number: suppressed, until this new consent
        await _text(api, "Join", "SMjoin")
        [customer] = _customers(api)
        assert customer.sms_consent == "opted_in"
        [evidence] = _evidence(api, customer.id)
        assert (evidence.status, evidence.source, evidence.disclosure) == ("opted_in", "sms_keyword:JOIN",
                                                                           replies.welcome)
        assert (await api.run.timeline("welcome", customer=customer.id))["outcome"] == "completed"
        assert _bodies(api) == [replies.stop, replies.welcome, "Welcome aboard"]


async def test_the_cli_plays_a_join_and_the_consent_export_lists_its_evidence(
        api: Api, tmp_path: Path, env, db, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("JOURNEYS_DIR", str(tmp_path / "journeys"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    runner = CliRunner()
    played = await asyncio.to_thread(runner.invoke, cli_app, ["inbound", "(201) 555-0188", "join"])
    assert played.exit_code == 0, played.output
    [customer] = _customers(api)
    assert played.output.strip() == f"join from {customer.id}"
    confirm = api.run.sim.catalog.settings.replies.confirm
    assert await eventually(lambda: _bodies(api) == [confirm])
    exported = await asyncio.to_thread(runner.invoke, cli_app, ["consent", "export"])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.output.splitlines()]
    assert [(r["customer_id"], r["status"], r["source"], r["disclosure"]) for r in rows] == [
        (customer.id, "pending", "sms_keyword:JOIN", confirm)]
    assert NUMBER not in exported.output


def test_keywords_are_single_words_upper_cased_and_not_the_engines_own() -> None:
    assert Settings.model_validate({"text_to_join": {"keywords": [" join", "Vip2"]}}).text_to_join.keywords == [
        "JOIN", "VIP2"]
    assert Settings().text_to_join.keywords == []  # off unless set: the default replies name no brand
    for bad, says in ((["join us"], "one word"), (["STOP"], "already answers"), (["yes"], "already answers"),
                      (["JOIN", "join"], "listed twice"), ([""], "one word")):
        with pytest.raises(ValidationError, match=says):
            Settings.model_validate({"text_to_join": {"keywords": bad}})
    # The words the settings refuse are the ones core/sms/inbound.py answers.
    assert OPT_OUT | OPT_IN | HELP | {"YES"} == RESERVED_KEYWORDS
