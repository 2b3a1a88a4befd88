"""Limits at the edge, through the real application over ASGI (both databases): the
token before the body, body limits while reading, strict JSON, the batch cap, short
422s. Bodies are streamed from a generator that counts what the
application pulled, so "not read" is observed, not assumed."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from api.limits import BODY_LIMITS, DEFAULT_BODY, MAX_BATCH, MB
from store.db import session_scope
from store.tables import Customer, Event
from tests.api.conftest import AUTH, Api

CHUNK = 64 * 1024
JSON = {"Content-Type": "application/json"}
PURCHASE = {"id": "order-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": 40}}


class Stream:
    """A body of ``total`` bytes, made chunk by chunk; ``pulled`` says how much was read."""

    def __init__(self, total: int, filler: bytes = b" ") -> None:
        self.total, self.filler, self.pulled = total, filler, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            size = min(CHUNK, self.total - self.pulled)
            self.pulled += size
            yield self.filler * size


def _events(api: Api) -> list[Event]:
    with session_scope(api.run.sim.db) as session:
        return list(session.exec(select(Event)).all())


async def test_the_token_is_checked_before_the_body_is_read(api: Api) -> None:
    routes = [("POST", "/events"), ("PUT", "/customers/c1"), ("POST", "/customers/c1/consent"),
              ("POST", "/customers/import")]
    for method, path in routes:
        for headers, expected in (({}, 401), ({"Authorization": "Bearer wrong"}, 403),
                                  ({"Authorization": "Basic dGVzdC10b2tlbg=="}, 401)):
            body = Stream(50 * MB)
            answer = await api.http.request(method, path, content=body, headers={**JSON, **headers})
            assert answer.status_code == expected, (method, path, answer.text)
            assert body.pulled == 0, (method, path)
    no_token = await api.http.post("/events", json=PURCHASE)
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert no_token.json() == {"detail": "a bearer token is required"}
    assert _events(api) == []


async def test_bodies_are_cut_at_their_route_limit_while_being_read(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    events_limit = BODY_LIMITS["/events"].bytes
    # Chunked (no Content-Length): 413 as soon as the limit is passed, the rest unread.
    streamed = Stream(50 * MB)
    cut = await api.http.post("/events", content=streamed, headers={**AUTH, **JSON})
    assert cut.status_code == 413
    assert cut.json() == {"detail": "the body is larger than 1 MB, the most POST /events takes: "
                                    f"send at most {MAX_BATCH} events per request"}
    assert events_limit < streamed.pulled <= events_limit + CHUNK
    # A Content-Length over the limit: 413 before anything is read.
    declared = Stream(50 * MB)
    early = await api.http.post("/events", content=declared,
                                headers={**AUTH, **JSON, "Content-Length": str(50 * MB)})
    assert early.status_code == 413 and declared.pulled == 0
    # Exactly at the limit is taken; one byte more is not.
    event = json.dumps(PURCHASE).encode()
    at_limit = event + b" " * (events_limit - len(event))
    assert (await api.http.post("/events", content=at_limit, headers={**AUTH, **JSON})).status_code == 202
    assert (await api.http.post("/events", content=at_limit + b" ", headers={**AUTH, **JSON})).status_code == 413
    assert [e.id for e in _events(api) if e.type == "purchase"] == ["order-1"]

    # Every other route has its own limit or the default one.
    webhook = Stream(10 * MB, b"a")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    inbound = await api.http.post("/twilio/inbound", content=webhook, headers=form)
    assert inbound.status_code == 413 and "64 KB, the most POST /twilio/inbound takes" in inbound.json()["detail"]
    assert webhook.pulled <= 64 * 1024 + CHUNK
    profile = Stream(DEFAULT_BODY.bytes + 1)
    put = await api.http.put("/customers/c1", content=profile, headers={**AUTH, **JSON})
    assert put.status_code == 413 and "256 KB, the most PUT /customers/{customer_id} takes" in put.json()["detail"]
    csv = await api.http.post("/customers/import", content=Stream(20 * MB + 1, b"a"),
                              headers={**AUTH, "Content-Type": "text/csv"})
    assert csv.status_code == 413 and "use `journeys import` on the server" in csv.json()["detail"]
    with session_scope(api.run.sim.db) as session:
        assert [c.id for c in session.exec(select(Customer)).all()] == ["c1"]


async def test_a_batch_over_the_cap_is_refused_before_any_event_is_validated(api: Api) -> None:
    tiny = [{"i": n} for n in range(20_000)]  # under 1 MB; invalid events, never looked at
    refused = await api.http.post("/events", json=tiny, headers=AUTH)
    assert refused.status_code == 422
    assert refused.json() == {"detail": [{"type": "too_long", "loc": ["body"], "input": 20_000,
                                          "msg": f"at most {MAX_BATCH} events per request"}]}
    batch = [{**PURCHASE, "id": f"order-{n}"} for n in range(MAX_BATCH + 1)]
    assert (await api.http.post("/events", json=batch, headers=AUTH)).status_code == 422
    assert _events(api) == []


@pytest.mark.parametrize("body", [
    '{"id": "o-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": NaN}}',
    '{"id": "o-1", "type": "purchase", "customer_id": "c1", "properties": {"amount": Infinity}}',
    '{"id": "o-1", "type": "page_viewed", "customer_id": "c1", "properties": {"score": -Infinity}}',
    '{"id": "o-1", "type": "page_viewed", "customer_id": "c1", "properties": {"score": 1e400}}',
])
def test_non_json_numbers_are_not_strict_json(body: str) -> None:
    from api.edge import strict_json_problem

    assert json.loads(body)  # what Python's json takes by default
    assert "number" in (strict_json_problem(body.encode()) or "")


async def test_bodies_are_parsed_strictly(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    event = '{"id": "o-1", "type": "purchase", "customer_id": "c1", "properties": %s}'
    cases = {
        '{"amount": NaN}': "`NaN` is not a JSON number",
        '{"amount": Infinity}': "`Infinity` is not a JSON number",
        '{"amount": 10, "score": -Infinity}': "`-Infinity` is not a JSON number",
        '{"amount": 1e400}': "`1e400` is out of range for a number",
        '{"amount": 10, "note": "caf\\u00e9 \\ud800"}': "body.properties.note holds a lone surrogate",
        '{"amount": 10, "\\udfff": 1}': "a key in body.properties holds a lone surrogate",
        '{"amount": 10, "deep": %s}' % ("[" * 40 + "]" * 40): "nested deeper than 32 levels",
        '{"amount": 10, "deep": %s}' % ("[" * 100_000 + "]" * 100_000): "nested deeper than 32 levels",
    }
    for properties, reason in cases.items():
        answer = await api.http.post("/events", content=event % properties, headers={**AUTH, **JSON})
        assert answer.status_code == 400, (properties[:60], answer.text)
        assert reason in answer.json()["detail"] and answer.json()["detail"].startswith("the body is not strict JSON")
    bad_profile = await api.http.put("/customers/c1", content='{"first_name": "\\udc00na"}', headers={**AUTH, **JSON})
    assert bad_profile.status_code == 400 and "body.first_name" in bad_profile.json()["detail"]
    assert _events(api) == []

    # What strict JSON allows still goes: a pair of surrogates is one character, an
    # escaped backslash is text, 31 levels of nesting are fine.
    fine = '{"amount": 10, "note": "\\ud83c\\udf89 \\\\ud800", "deep": %s}' % ("[" * 30 + "]" * 30)
    taken = await api.http.post("/events", content=event % fine, headers={**AUTH, **JSON})
    assert taken.status_code == 202, taken.text
    [stored] = [e for e in _events(api) if e.type == "purchase"]
    assert stored.properties["note"] == "\U0001f389 \\ud800" and math.isfinite(stored.properties["amount"])


async def test_a_422_names_the_field_without_echoing_the_body(api: Api) -> None:
    huge = "x" * 600_000
    too_long = await api.http.post("/events", json={**PURCHASE, "customer_id": huge}, headers=AUTH)
    assert too_long.status_code == 422 and len(too_long.content) < 1000
    [error] = too_long.json()["detail"]
    assert error["loc"] == ["body", "customer_id"] and error["input"] == "x" * 100 + "…"
    missing = await api.http.post("/events", json={"type": "purchase", "properties": {"blob": huge}}, headers=AUTH)
    assert missing.status_code == 422 and len(missing.content) < 1000
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} == {("body", "id"), ("body", "customer_id")}
    assert all("input" not in e for e in missing.json()["detail"])  # the whole body, by default
    batch = [{**PURCHASE, "id": f"o-{n}", "type": huge[:1500]} for n in range(MAX_BATCH)]  # 780 KB
    many = await api.http.post("/events", json=batch, headers=AUTH)
    assert many.status_code == 422 and len(many.json()["detail"]) == MAX_BATCH
    assert len(many.content) < 150_000  # FastAPI's own handler: the 780 KB again, and more


async def test_the_limits_are_in_the_openapi_description(api: Api) -> None:
    described: dict[str, Any] = (await api.http.get("/openapi.json")).json()
    assert "Limits:" in described["info"]["description"]
    events = described["paths"]["/events"]["post"]
    assert "1 MB" in events["responses"]["413"]["description"] and "400" in events["responses"]
    assert f"at most {MAX_BATCH}" in events["description"] and "1 MB" in events["description"]
    assert "64 KB" in described["paths"]["/twilio/inbound"]["post"]["responses"]["413"]["description"]
    assert "256 KB" in described["paths"]["/customers/{customer_id}"]["put"]["responses"]["413"]["description"]
    assert "413" not in described["paths"]["/customers/{customer_id}"]["get"]["responses"]
