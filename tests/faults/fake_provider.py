"""A Twilio-compatible Messages API that the real SDK talks to (``TWILIO_API_BASE_URL``),
with faults injected at chosen rates, and its own log of what it created: the truth a
fault scenario checks the engine's records against.

It serves ``POST .../Messages.json`` (create), ``GET .../Messages.json`` (the list, with
Twilio's ``To``, ``DateSent``/``DateSent>``/``DateSent<`` and ``PageSize`` filters, newest
first, paged with ``next_page_uri``) and ``GET .../Messages/{sid}.json``. Faults apply to
creates only, drawn from a seeded RNG so a run is reproducible:

- ``fail_before``: HTTP 500, nothing created (the client cannot tell it from the next one);
- ``fail_after``: HTTP 500 *after* creating: the message exists and will be delivered;
- ``rate_limit``: HTTP 429 with Twilio code 20429, nothing created;
- ``hang``: created, then the answer is held ``hang_seconds`` (longer than the client's timeout).

Steer it in-process (``FakeProvider.set_faults``) or, running as its own process
(``python -m tests.faults.fake_provider --port N``), with ``POST /_control`` (a JSON object of
the same fields); ``GET /_log`` lists the created messages, ``GET /_control`` the faults and
how many of each were injected.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.local_server import LocalServer

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages(?:/(?P<sid>SM\w+))?\.json$")
FAULTS = ("fail_before", "fail_after", "rate_limit", "hang")


@dataclass
class Faults:
    """Fractions of creates (0..1, tried in this order on one draw) and the hang length."""

    fail_before: float = 0.0
    fail_after: float = 0.0
    rate_limit: float = 0.0
    hang: float = 0.0
    hang_seconds: float = 6.0
    seed: int = 0

    def __post_init__(self) -> None:
        if sum(getattr(self, name) for name in FAULTS) > 1:
            raise ValueError("the fault fractions add up to more than 1")


@dataclass
class Created:
    """One message the provider holds: what a Twilio list would show of it."""

    sid: str
    account_sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    created_at: datetime  # when the create request arrived
    fault: str | None  # the fault its create request met, if any (fail_after / hang)

    @property
    def message_id(self) -> str | None:
        """Our message id: the status callback carries ``?m=<id>``."""
        if not self.status_callback:
            return None
        values = parse_qs(urlsplit(self.status_callback).query).get("m")
        return values[0] if values else None

    def as_json(self) -> dict[str, Any]:
        stamp = _rfc2822(self.created_at)
        segments = max(1, -(-len(self.body) // 153)) if len(self.body) > 160 else 1
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": self.body,
            "date_created": stamp, "date_sent": stamp, "date_updated": stamp, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": self.from_, "messaging_service_sid":
            self.messaging_service_sid, "num_media": "0", "num_segments": str(segments), "price": None,
            "price_unit": "USD", "sid": self.sid, "status": "sent", "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}/Media.json"},
            "to": self.to, "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}.json",
        }

    def record(self) -> dict[str, Any]:
        """The log line: JSON-friendly, with our message id and the exact arrival time."""
        return {"sid": self.sid, "to": self.to, "body": self.body, "from": self.from_,
                "messaging_service_sid": self.messaging_service_sid, "status_callback": self.status_callback,
                "message_id": self.message_id, "created_at": self.created_at.isoformat(), "fault": self.fault}


@dataclass
class Stats:
    creates: int = 0  # create requests received
    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    lists: int = 0  # list requests (the engine asking what was sent)


class FakeProvider(LocalServer):
    """The fake on ``127.0.0.1`` (a free port unless given), serving from a thread."""

    def __init__(self, port: int = 0, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._messages: list[Created] = []
        self.stats = Stats()
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        super().__init__(_Handler, port)

    # --- control --------------------------------------------------------------------

    def set_faults(self, faults: Faults | None = None, /, **fields: Any) -> Faults:
        """Replace the faults (fields not given keep their values); reseeds the RNG."""
        with self._lock:
            self.faults = dataclasses.replace(faults or self.faults, **fields)
            self._rng = random.Random(self.faults.seed)
            return self.faults

    def calm(self) -> None:
        """No more faults (the seed stays)."""
        self.set_faults(**dict.fromkeys(FAULTS, 0.0))

    @property
    def log(self) -> list[Created]:
        """Every message created, in arrival order."""
        with self._lock:
            return list(self._messages)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": dataclasses.asdict(self.faults), "creates": self.stats.creates,
                    "injected": dict(self.stats.injected), "lists": self.stats.lists,
                    "messages": len(self._messages)}

    # --- the API ----------------------------------------------------------------------

    def _draw(self) -> str | None:
        with self._lock:
            self.stats.creates += 1
            roll, edge = self._rng.random(), 0.0
            for name in FAULTS:
                edge += getattr(self.faults, name)
                if roll < edge:
                    self.stats.injected[name] += 1
                    return name
            return None

    def _create(self, account: str, form: dict[str, str], fault: str | None) -> Created:
        message = Created(sid="SM" + uuid.uuid4().hex, account_sid=account, to=form.get("To", ""),
                          body=form.get("Body", ""), from_=form.get("From"),
                          messaging_service_sid=form.get("MessagingServiceSid"),
                          status_callback=form.get("StatusCallback"), created_at=datetime.now(UTC), fault=fault)
        with self._lock:
            self._messages.append(message)
        return message

    def _select(self, query: dict[str, str]) -> list[Created]:
        with self._lock:
            self.stats.lists += 1
            found = list(self._messages)
        if "To" in query:
            found = [m for m in found if m.to == query["To"]]
        if "From" in query:
            found = [m for m in found if m.from_ == query["From"]]
        for name, keep in (("DateSent", _on), ("DateSent>", _on_or_after), ("DateSent<", _on_or_before)):
            if name in query:
                found = [m for m in found if keep(m.created_at, query[name])]
        return sorted(found, key=lambda m: m.created_at, reverse=True)  # Twilio lists newest first


def _rfc2822(at: datetime) -> str:
    """Twilio's date format: ``Tue, 01 Dec 2026 20:57:00 +0000``."""
    return format_datetime(at.astimezone(UTC).replace(microsecond=0)).replace("-0000", "+0000")


def _bound(text: str) -> datetime | date:
    """A filter value as the SDK sends it (``2026-12-01T20:57:00Z``) or a bare date."""
    if "T" in text:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return date.fromisoformat(text)


def _seconds(at: datetime) -> datetime:
    return at.replace(microsecond=0)  # Twilio keeps whole seconds


def _on(at: datetime, text: str) -> bool:
    bound = _bound(text)
    return _seconds(at) == bound if isinstance(bound, datetime) else at.date() == bound


def _on_or_after(at: datetime, text: str) -> bool:  # Twilio's DateSent> means "on or after"
    bound = _bound(text)
    return _seconds(at) >= bound if isinstance(bound, datetime) else at.date() >= bound


def _on_or_before(at: datetime, text: str) -> bool:
    bound = _bound(text)
    return _seconds(at) <= bound if isinstance(bound, datetime) else at.date() <= bound


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def fake(self) -> FakeProvider:
        return self.server.fake  # type: ignore[attr-defined]

    def _reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        return {name: values[-1] for name, values in parse_qs(raw, keep_blank_values=True).items()}

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_control":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                self.fake.set_faults(**json.loads(self.rfile.read(length) or b"{}"))
            except (TypeError, ValueError) as err:
                self._reply(400, {"error": str(err)})
                return
            self._reply(200, self.fake.status())
            return
        matched = _MESSAGES.match(parts.path)
        form = self._form()
        if not matched or matched["sid"]:
            self._reply(404, _error(404, 20404, "The requested resource was not found"))
            return
        if not form.get("To") or not (form.get("Body") or form.get("MediaUrl")):
            self._reply(400, _error(400, 21604, "A 'To' phone number and a 'Body' are required."))
            return
        fault = self.fake._draw()
        if fault == "rate_limit":
            self._reply(429, _error(429, 20429, "Too Many Requests"))
            return
        if fault == "fail_before":
            self._reply(500, _error(500, 20500, "Internal Server Error"))
            return
        message = self.fake._create(matched["account"], form, fault)
        if fault == "fail_after":
            self._reply(500, _error(500, 20500, "Internal Server Error"))
            return
        if fault == "hang":
            self.fake._released.wait(self.fake.faults.hang_seconds)
        answer = {**message.as_json(), "status": "queued", "date_sent": None}  # as Twilio answers a create
        with contextlib.suppress(OSError):  # a hung request's client is long gone
            self._reply(201, answer)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_log":
            self._reply(200, [m.record() for m in self.fake.log])
            return
        if parts.path == "/_control":
            self._reply(200, self.fake.status())
            return
        matched = _MESSAGES.match(parts.path)
        if not matched:
            self._reply(404, _error(404, 20404, "The requested resource was not found"))
            return
        if matched["sid"]:
            found = [m for m in self.fake.log if m.sid == matched["sid"]]
            if found:
                self._reply(200, found[0].as_json())
            else:
                self._reply(404, _error(404, 20404, f"The requested resource {parts.path} was not found"))
            return
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        try:
            found = self.fake._select(query)
            size = max(1, min(1000, int(query.get("PageSize", 50))))
            page = int(query.get("Page", 0))
        except ValueError as err:
            self._reply(400, _error(400, 20001, f"Invalid filter: {err}"))
            return
        chunk = found[page * size:(page + 1) * size]
        base = parts.path
        next_uri = None
        if (page + 1) * size < len(found):
            next_uri = f"{base}?{urlencode({**query, 'Page': page + 1, 'PageSize': size})}"
        self._reply(200, {
            "messages": [m.as_json() for m in chunk], "end": page * size + max(0, len(chunk) - 1),
            "first_page_uri": f"{base}?{urlencode({**query, 'Page': 0, 'PageSize': size})}",
            "next_page_uri": next_uri, "previous_page_uri": None, "page": page, "page_size": size,
            "start": page * size, "uri": f"{base}?{parts.query}" if parts.query else base,
        })

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--seed", type=int, default=0)
    for name in FAULTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, dest=name)
    parser.add_argument("--hang-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    faults = Faults(**{name: getattr(args, name) for name in (*FAULTS, "hang_seconds", "seed")})
    fake = FakeProvider(args.port, faults).start()
    print(f"listening {fake.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
