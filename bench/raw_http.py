"""A lean HTTP/1.1 client for load: POST over keep-alive connections, one request at a
time on each, bytes written by hand.

httpx spends more CPU per request than the API does to answer it; on a 2-core machine
that shares its cores with the API, the database and the Temporal server, the load
generator then sets the rate it measures. This one costs a fraction of that."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


class KeepAliveClient:
    """``connections`` keep-alive connections to ``base_url``; ``post`` takes a free one."""

    def __init__(self, base_url: str, headers: dict[str, str], connections: int) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.connections = connections
        self._head = "".join(f"{name}: {value}\r\n" for name, value in
                             {"Host": parts.netloc, "Content-Type": "application/json", **headers}.items()).encode()
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def __aenter__(self) -> KeepAliveClient:
        for _ in range(self.connections):
            self._free.put_nowait(await asyncio.open_connection(self.host, self.port))
        return self

    async def __aexit__(self, *_: object) -> None:
        while not self._free.empty():
            _, writer = self._free.get_nowait()
            writer.close()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Status and body of the response. A connection the server closed while idle
        (uvicorn: after 5 s) is opened again and the request sent once more, as httpx does
        (the server read nothing of it; an event is stored once per id anyway)."""
        connection = await self._free.get()
        try:
            try:
                status, payload = await self._exchange(*connection, path, body)
            except (asyncio.IncompleteReadError, ConnectionError):
                connection[1].close()
                connection = await asyncio.open_connection(self.host, self.port)
                status, payload = await self._exchange(*connection, path, body)
        except BaseException:
            connection[1].close()
            self._free.put_nowait(await asyncio.open_connection(self.host, self.port))
            raise
        self._free.put_nowait(connection)
        return status, payload

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                        body: bytes) -> tuple[int, bytes]:
        request = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (path.encode(), self._head, len(body))
        writer.write(request + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = _LENGTH.search(head)
        payload = await reader.readexactly(int(length.group(1))) if length else b""
        return int(head.split(b" ", 2)[1]), payload
