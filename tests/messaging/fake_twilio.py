"""A stand-in for Twilio's REST API that fails on demand.

Prism (see prism.py) only ever answers with successes, so the error paths are
exercised here, through the real SDK: Twilio-shaped error bodies, a server that
takes the request and then stalls, one that hangs up, a closed port, a port that
never completes the TCP handshake.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.local_server import LocalServer

Reply = Callable[["_Handler"], None]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    form: dict[str, list[str]]
    headers: dict[str, str]


class FakeTwilio(LocalServer):
    """Answers every request with the reply set last (by default: message created)."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._reply: Reply = _created("SM" + "f" * 32, "queued")
        super().__init__(_Handler)

    # --- what the next requests get -------------------------------------------------

    def succeed(self, sid: str = "SM" + "f" * 32, status: str = "queued") -> None:
        self._reply = _created(sid, status)

    def fail(self, status: int, code: int | None = None, message: str = "Error") -> None:
        """A Twilio-shaped error body; with code None, a bare non-JSON body (like a proxy's)."""
        if code is None:
            self._reply = _raw(status, b"<html>upstream error</html>", "text/html")
            return
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        self._reply = _raw(status, json.dumps(body).encode(), "application/json")

    def stall(self, seconds: float) -> None:
        """Read the whole request, then answer (a success) only after `seconds`."""
        created = _created("SM" + "e" * 32, "queued")

        def reply(handler: _Handler) -> None:
            self._released.wait(seconds)
            with contextlib.suppress(OSError):
                created(handler)

        self._reply = reply

    def hang_up(self) -> None:
        """Read the whole request, then reset the connection without a word."""
        self._reply = _reset

    def cut_body(self) -> None:
        """Start a 201 answer, then reset the connection half-way through the body."""

        def reply(handler: _Handler) -> None:
            handler.send_response(201)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "500")
            handler.end_headers()
            handler.wfile.write(b'{"sid": "SM')
            handler.wfile.flush()
            _reset(handler)

        self._reply = reply


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        fake: FakeTwilio = self.server.fake  # type: ignore[attr-defined]
        fake.requests.append(RecordedRequest("POST", self.path, form, dict(self.headers)))
        fake._reply(self)

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


def _raw(status: int, body: bytes, content_type: str) -> Reply:
    def reply(handler: _Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return reply


def _created(sid: str, status: str) -> Reply:
    body = {"sid": sid, "status": status, "account_sid": "AC" + "0" * 32, "num_segments": "1"}
    return _raw(201, json.dumps(body).encode(), "application/json")


def _reset(handler: _Handler) -> None:
    # SO_LINGER 0 makes close() send a RST: the client sees its connection torn down.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def closed_port_url() -> str:
    """A local URL nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def unanswered_port_url() -> Iterator[str]:
    """A local URL whose TCP handshake never completes, so connecting times out.

    A listener with a full accept queue: Linux then drops new SYNs silently.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.2)
                try:
                    filler.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
            yield f"http://127.0.0.1:{port}"
        finally:
            for filler in fillers:
                filler.close()
