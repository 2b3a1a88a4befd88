"""Limits at the edge, measured on a real `journeys api` process (a real Temporal dev
server behind it): huge bodies are refused before they are read, by the server's own
memory (/proc/<pid>/status), and no token reaches its log.

The bodies are made chunk by chunk and sent over a raw socket, so the test holds no
large body and sees when the answer arrives compared with how much it had sent."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from processes.dev import wait_for_server
from tests.api.api_process import ApiProcess, running_api

TOKEN = "process-token"
MB = 1024 * 1024


@pytest.fixture(scope="module")
async def api_process(dev_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ApiProcess]:
    await wait_for_server(dev_server)
    with running_api(dev_server, tmp_path_factory.mktemp("api"), TOKEN,
                     env={"TWILIO_AUTH_TOKEN": "twilio-secret"}) as api:
        yield api


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float  # from the first byte sent to the first byte of the answer
    sent_before: int  # bytes sent when the answer arrived
    sent: int  # bytes sent in all


def send(port: int, method: str, path: str, headers: dict[str, str], chunks: Iterable[bytes], *,
         until_answer: bool) -> Answer:
    """One request, the body sent chunked (or as-is with a Content-Length header); stops
    sending at the answer when ``until_answer``, else sends all of it first."""
    framed = "Content-Length" not in headers
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += "Transfer-Encoding: chunked\r\n\r\n" if framed else "\r\n"

    def wire() -> Iterator[bytes]:
        yield head.encode()
        for chunk in chunks:
            yield (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if framed else chunk
        if framed:
            yield b"0\r\n\r\n"

    pieces, pending, sent, sent_before, seconds = wire(), b"", 0, -1, -1.0
    answer, sending, started = bytearray(), True, time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setblocking(False)
        while True:
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 60)
            assert readable or writable, "no answer in 60 s"
            if readable:
                data = sock.recv(1 << 16)
                if data and seconds < 0:
                    seconds, sent_before = time.monotonic() - started, sent
                answer += data
                if not data or (_complete(answer) and (until_answer or not sending)):
                    break
            if writable and sending:
                pending = pending or next(pieces, b"")
                try:
                    count = sock.send(pending) if pending else 0
                except (BrokenPipeError, ConnectionResetError):  # the server hung up: read its answer
                    pending, count = b"", 0
                sent, pending = sent + count, pending[count:]
                sending = bool(pending) or count > 0
                if not sending and _complete(answer):
                    break
    status_line, _, rest = bytes(answer).partition(b"\r\n")
    return Answer(int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], seconds, sent_before, sent)


def _complete(answer: bytearray) -> bool:
    head, found, body = bytes(answer).partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def spaces(total: int) -> Iterator[bytes]:
    chunk = b" " * MB
    for _ in range(total // MB):
        yield chunk


def batch(events: int) -> Iterator[bytes]:
    """A JSON array of ``events`` purchases, 10,000 at a time (about 80 bytes each)."""
    one = b'{"id": "order-%07d", "type": "purchase", "customer_id": "c1", "properties": {"amount": 1}}'
    yield b"["
    for start in range(0, events, 10_000):
        yield (b"," if start else b"") + b",".join(one % n for n in range(start, min(start + 10_000, events)))
    yield b"]"


def test_huge_bodies_are_refused_before_they_are_read(api_process: ApiProcess) -> None:
    port, auth = api_process.port, {"Authorization": f"Bearer {TOKEN}"}
    json_type = {"Content-Type": "application/json"}
    # Warm up the paths measured (imports and caches), then take the baseline.
    for headers in ({}, auth):
        send(port, "POST", "/events", {**json_type, **headers}, [b'{"id": 1}'], until_answer=False)
    peak_before, rss_before = api_process.memory("VmHWM"), api_process.memory("VmRSS")

    # 200 MB without a token, all of it sent: 401, and the server discards the rest.
    anonymous = send(port, "POST", "/events", json_type, spaces(200 * MB), until_answer=False)
    assert anonymous.status == 401 and anonymous.sent >= 200 * MB
    assert anonymous.sent_before < 32 * MB  # answered at the headers, not after the body
    # 200 MB with the token: 413 once the 1 MB of POST /events is passed.
    chunked = send(port, "POST", "/events", {**json_type, **auth}, spaces(200 * MB), until_answer=True)
    assert chunked.status == 413 and b"larger than 1 MB" in chunked.body
    assert chunked.sent_before < 32 * MB
    # The same with a Content-Length: 413 before any of it is read.
    declared = send(port, "POST", "/events", {**json_type, **auth, "Content-Length": str(200 * MB)},
                    spaces(200 * MB), until_answer=True)
    assert declared.status == 413 and declared.sent_before < 32 * MB
    # A million events (80 MB) with the token: a quick 413, long before the array ends.
    million = send(port, "POST", "/events", {**json_type, **auth}, batch(1_000_000), until_answer=True)
    assert million.status == 413 and b"at most 500 events" in million.body
    assert million.sent_before < 32 * MB and million.seconds < 10
    # 200 MB to a Twilio webhook, unsigned: 413 at 64 KB (its signature covers the whole form).
    webhook = send(port, "POST", "/twilio/inbound", {"Content-Type": "application/x-www-form-urlencoded"},
                   (b"a" * MB for _ in range(200)), until_answer=True)
    assert webhook.status == 413 and webhook.sent_before < 32 * MB

    peak_after, rss_after = api_process.memory("VmHWM"), api_process.memory("VmRSS")
    figures = {"rss_before_mb": rss_before / MB, "rss_after_mb": rss_after / MB,
               "peak_growth_mb": (peak_after - peak_before) / MB,
               "401_after_s": anonymous.seconds, "413_chunked_after_s": chunked.seconds,
               "413_content_length_after_s": declared.seconds, "413_million_after_s": million.seconds,
               "sent_before_413_mb": chunked.sent_before / MB}
    print(" ".join(f"{key}={value:.3f}" for key, value in figures.items()))
    assert peak_after - peak_before < 50 * MB, figures
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200


def test_no_token_reaches_the_log(api_process: ApiProcess) -> None:
    base = f"http://127.0.0.1:{api_process.port}"
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/customers/c-log?token=SECRET-IN-QUERY").status_code == 401
        assert http.get("/customers/c-log?token=SECRET-IN-QUERY",
                        headers={"Authorization": "Bearer SECRET-IN-HEADER"}).status_code == 403
        assert http.get("/customers/c-log", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        assert http.post("/twilio/status?m=abc&signature=SECRET-SIGNATURE", data={"MessageSid": "SM1"},
                         headers={"X-Twilio-Signature": "SECRET-TWILIO-HEADER"}).status_code in (403, 422)
    deadline = time.monotonic() + 10
    while '"GET /customers/c-log HTTP/1.1" 404' not in api_process.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = api_process.log.read_text()
    assert '"GET /customers/c-log HTTP/1.1" 401' in log and '"POST /twilio/status HTTP/1.1"' in log  # logged...
    for secret in ("SECRET", TOKEN, "twilio-secret", "token="):
        assert secret not in log  # ...without the query, and no header is ever logged
