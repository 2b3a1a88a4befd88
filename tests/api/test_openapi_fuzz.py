"""A property-based run of the service's own OpenAPI description against the real
application (schemathesis): every operation, valid and invalid input, with the bearer
token, and the Twilio webhooks signed as Twilio signs them. No input may get a 5xx,
and every response must match the description.

The application is the one tests/api/conftest.py wires (a simulation on the
time-skipping server, both databases). Hypothesis runs in a thread and hands each
request to the test's event loop, where the workers run too; the run is
derandomized (the same inputs every time) and bounded per operation.
"""

from __future__ import annotations

import asyncio
import copy
import os
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from twilio.request_validator import RequestValidator

from api.app import create_app
from tests.api.conftest import AUTH, PUBLIC_URL, TWILIO_TOKEN, Api

MAX_EXAMPLES = int(os.environ.get("JOURNEYS_FUZZ_EXAMPLES", "30"))  # per operation and mode
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
ROOT = str(Path(__file__).resolve().parents[2]) + "/"
REPLACED_HEADERS = {"authorization", "x-twilio-signature"}  # the run sets these itself
KNOWN_PHONES = ["+12015550123", "+12015550124", "+12015550199"]


def _seeded_choice(values: list[str]) -> dict[str, Any]:
    """Mostly realistic values (so handlers do real work), sometimes anything at all."""
    return {"anyOf": [{"enum": values}, {"type": "string"}]}


# What Twilio posts (form fields). The routes read the form themselves (they must
# check the signature over it first), so the description has no request body for them;
# the run adds one so the handlers behind the signature are exercised too.
TWILIO_FORMS: dict[str, dict[str, Any]] = {
    "/twilio/inbound": {
        "From": _seeded_choice([*KNOWN_PHONES, "12345", "NordicShoes"]),
        "To": _seeded_choice(["+15550000000"]),
        "Body": _seeded_choice(["STOP", " sToP ", "stopall", "YES", "START", "HELP", "9", "11", "unstop", ""]),
        "MessageSid": _seeded_choice(["SMin1", "SMin2"]),
    },
    "/twilio/status": {
        "MessageSid": _seeded_choice([f"SM{n:032d}" for n in (1, 2, 3)] + ["SMunknown"]),
        "MessageStatus": _seeded_choice(["queued", "sent", "delivered", "undelivered", "failed", "read"]),
        "ErrorCode": _seeded_choice(["21610", "30003", "30006", "21211", ""]),
    },
}


def fuzz_description(description: dict[str, Any]) -> dict[str, Any]:
    described = copy.deepcopy(description)
    for path, fields in TWILIO_FORMS.items():
        described["paths"][path]["post"]["requestBody"] = {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": fields}}}}
    return described


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    return set()


def _resolves(description: dict[str, Any], reference: str) -> bool:
    node: Any = description
    for part in reference.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_description_has_no_dangling_references() -> None:
    async def no_services() -> Any:
        raise AssertionError("the description needs no services")

    description = create_app(no_services).openapi()
    dangling = sorted(ref for ref in _references(description) if not _resolves(description, ref))
    assert dangling == [], f"the OpenAPI description refers to what it does not define: {dangling}"


class Sender:
    """Sends a generated case through the test's client, on the test's event loop."""

    def __init__(self, api: Api, loop: asyncio.AbstractEventLoop) -> None:
        self.api = api
        self.loop = loop
        self.statuses: dict[str, Counter[int]] = {}

    def __call__(self, case: schemathesis.Case) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(self._send(case), self.loop).result(timeout=60)

    async def _send(self, case: schemathesis.Case) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url=PUBLIC_URL)
        # Always the valid token (what schemathesis makes up is refused, and refusing is
        # tested elsewhere): the point is to reach the handlers.
        headers = {key: str(value) for key, value in kwargs["headers"].items() if key.lower() != "authorization"}
        headers.update(AUTH)
        body: dict[str, Any] = {}
        if "json" in kwargs:
            body["json"] = kwargs["json"]
        elif isinstance(kwargs.get("data"), dict):
            body["data"] = kwargs["data"]
        elif kwargs.get("data") is not None:
            body["content"] = kwargs["data"]
        request = self.api.http.build_request(kwargs["method"], kwargs["url"], params=kwargs.get("params") or None,
                                              headers=headers, **body)
        if request.url.path.startswith("/twilio/"):
            self._sign(request)
        try:
            response = await self.api.http.send(request, follow_redirects=False)
        except Exception as err:  # the ASGI transport re-raises what the app did not handle: a 500
            frames = traceback.extract_tb(err.__traceback__)
            ours = [f for f in frames if f.filename.startswith(ROOT) and "/.venv/" not in f.filename] or frames
            where = " < ".join(f"{f.filename.removeprefix(ROOT)}:{f.lineno} {f.name}" for f in reversed(ours[-3:]))
            first_line = str(err).splitlines()[0] if str(err) else ""
            raise AssertionError(f"500: {type(err).__name__}: {first_line} (at {where})") from err
        self.statuses.setdefault(case.operation.label, Counter())[response.status_code] += 1
        return response

    @staticmethod
    def _sign(request: httpx.Request) -> None:
        """What Twilio would send: the signature over the public URL and the form, as
        the app reads them (an unparsable or non-form body signs as an empty form)."""
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(request.content.decode("latin-1"), keep_blank_values=True))
        query = request.url.query.decode("latin-1")
        url = PUBLIC_URL + request.url.path + (f"?{query}" if query else "")
        request.headers["X-Twilio-Signature"] = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)


def _describe(case: schemathesis.Case) -> str:
    parts = [f"{case.method} {case.formatted_path}"]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in REPLACED_HEADERS}
    parts += [f"{name}={value!r}" for name, value in (("query", case.query), ("headers", headers),
                                                       ("body", case.body)) if value]
    return " ".join(parts)[:600]


def _property(operation: Any, mode: GenerationMode, send: Callable[[schemathesis.Case], httpx.Response],
              tried: list[schemathesis.Case]) -> Callable[[], None]:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy(generation_mode=mode))
    def holds(case: schemathesis.Case) -> None:
        tried.append(case)
        case.validate_response(send(case), checks=CHECKS)

    return holds


def fuzz(description: dict[str, Any], send: Callable[[schemathesis.Case], httpx.Response]) -> list[str]:
    """Every operation in both generation modes; one report per failing one."""
    schema = schemathesis.openapi.from_dict(description)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            tried: list[schemathesis.Case] = []
            try:
                _property(operation, mode, send, tried)()
            except Unsatisfiable:
                continue  # nothing in this operation can be made invalid
            except Exception as err:
                # Hypothesis replays the (shrunk) failing example last.
                failures.append(f"{operation.label} ({mode.value}): {err}\n  minimal input: {_describe(tried[-1])}")
    return failures


async def test_no_input_gets_a_server_error_and_every_answer_matches_the_description(api: Api) -> None:
    # Something to act on: customers behind the known numbers, and a survey question
    # sent (SM...1) so receipts and replies find a message and a waiting run.
    await api.customer("c1", phone=KNOWN_PHONES[0])
    await api.customer("c2", phone=KNOWN_PHONES[1], sms_consent="pending")
    await api.http.post("/events", json={"id": "seed-1", "type": "purchase", "customer_id": "c1"}, headers=AUTH)
    description = fuzz_description((await api.http.get("/openapi.json")).json())
    send = Sender(api, asyncio.get_running_loop())
    failures = await asyncio.to_thread(fuzz, description, send)
    seen = {label: dict(sorted(counts.items())) for label, counts in send.statuses.items()}
    assert failures == [], "\n\n".join(failures) + f"\n\nstatuses seen: {seen}"
    # The run reached the handlers: signed webhooks were taken, events accepted.
    assert seen["POST /twilio/inbound"].get(200) and seen["POST /twilio/status"].get(204), seen
    assert seen["POST /events"].get(202) and seen["PUT /customers/{customer_id}"].get(200), seen


# Input the generator rarely or never makes (free-form properties, the ends of the date
# range, NUL characters, which PostgreSQL refuses in text): each got a 500 once.
AWKWARD: dict[str, tuple[str, str, Any]] = {
    "amount 'inf' (a string, parsed as a float)": (
        "POST", "/events", {"id": "a1", "type": "purchase", "customer_id": "a1", "properties": {"amount": "inf"}}),
    "amount 'nan'": (
        "POST", "/events", {"id": "a2", "type": "purchase", "customer_id": "a2", "properties": {"amount": "nan"}}),
    "amount 3e9 (points beyond a 32-bit integer)": (
        "POST", "/events", {"id": "a3", "type": "purchase", "customer_id": "a3", "properties": {"amount": 3e9}}),
    "amount 1e19 (points beyond a 64-bit integer)": (
        "POST", "/events", {"id": "a4", "type": "purchase", "customer_id": "a4", "properties": {"amount": 1e19}}),
    "occurred_at 0001-01-01T00:30:00+01:00 (before year 1 in UTC)": (
        "POST", "/events", {"id": "a5", "type": "page_viewed", "customer_id": "a5",
                            "occurred_at": "0001-01-01T00:30:00+01:00"}),
    "a purchase on 9999-12-31 (points expire after year 9999)": (
        "POST", "/events", {"id": "a6", "type": "purchase", "customer_id": "a6",
                            "occurred_at": "9999-12-31T23:59:59Z", "properties": {"amount": 5}}),
    "a purchase on 0001-01-01": (
        "POST", "/events", {"id": "a7", "type": "purchase", "customer_id": "a7",
                            "occurred_at": "0001-01-01T00:00:00Z", "properties": {"amount": 5}}),
    "consent occurred_at 0001-01-01T00:30:00+01:00": (
        "POST", "/customers/a8/consent", {"status": "opted_out", "source": "form",
                                          "occurred_at": "0001-01-01T00:30:00+01:00"}),
    "a NUL character in an event id": (
        "POST", "/events", {"id": "\x00", "type": "page_viewed", "customer_id": "a9"}),
    "a NUL character in a profile field": ("PUT", "/customers/a10", {"first_name": "A\x00"}),
}


AWKWARD_WEBHOOKS: dict[str, tuple[str, dict[str, str]]] = {
    "a NUL character in a receipt's message id": ("/twilio/status?m=%00", {"MessageSid": "SM1",
                                                                          "MessageStatus": "delivered"}),
    "a NUL character in a receipt's MessageSid": ("/twilio/status", {"MessageSid": "\x00", "MessageStatus": "sent"}),
    "a NUL character in an inbound text": ("/twilio/inbound", {"From": "+12015550123", "Body": "9\x00",
                                                               "MessageSid": "SM\x00"}),
}


async def test_awkward_valid_input_gets_no_server_error(api: Api) -> None:
    await api.customer("c1", phone="+12015550123")
    requests = {name: api.http.request(method, path, json=body, headers=AUTH)
                for name, (method, path, body) in AWKWARD.items()}
    requests |= {name: api.twilio(path, form) for name, (path, form) in AWKWARD_WEBHOOKS.items()}
    errors = []
    for name, request in requests.items():
        try:
            response = await request
        except Exception as err:  # what the app did not handle: a 500
            errors.append(f"{name} -> {type(err).__name__}: {str(err).splitlines()[0][:160]}")
            continue
        if response.status_code >= 500:
            errors.append(f"{name} -> {response.status_code}")
    assert errors == [], "\n".join(errors)
