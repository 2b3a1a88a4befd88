"""`journeys codec-server`: Temporal's remote codec protocol, so the Web UI (its "codec
endpoint") and `temporal workflow show --codec-endpoint` show decoded payloads to an
operator whose browser or shell can reach this server.

POST /decode and POST /encode take and return ``{"payloads": [...]}``, each payload in
protobuf JSON (metadata values and data in base64). The keys never leave this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payload

from processes.codec import EncryptionCodec, PayloadDecryptionError, codec_from
from processes.settings import ServiceSettings, SettingsError

DEFAULT_PORT = 8888


def create_codec_app(codec: EncryptionCodec, *, origins: list[str], token: str | None = None) -> FastAPI:
    app = FastAPI(title="Journeys payload codec", docs_url=None, redoc_url=None, openapi_url=None)

    def check_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(status_code=401, detail="a bearer token (JOURNEYS_CODEC_TOKEN) is required")

    async def payloads_of(request: Request) -> list[Payload]:
        try:
            body = await request.json()
            items = body["payloads"]
            if not isinstance(items, list):
                raise TypeError
            return [ParseDict(item, Payload()) for item in items]
        except (ValueError, KeyError, TypeError, ParseError) as err:
            raise HTTPException(status_code=400, detail=f"the body must be {{\"payloads\": [...]}} with "
                                                        f"payloads in protobuf JSON ({type(err).__name__})") from None

    def answer(payloads: list[Payload]) -> dict[str, Any]:
        return {"payloads": [MessageToDict(payload) for payload in payloads]}

    @app.post("/decode")
    async def decode(request: Request) -> dict[str, Any]:
        check_token(request)
        payloads = await payloads_of(request)
        try:
            return answer(await codec.decode(payloads))
        except PayloadDecryptionError as err:
            raise HTTPException(status_code=400, detail=str(err)) from None

    @app.post("/encode")
    async def encode(request: Request) -> dict[str, Any]:
        check_token(request)
        return answer(await codec.encode(await payloads_of(request)))

    # The Web UI calls from the browser, from its own origin; it sends X-Namespace, and
    # Authorization when "pass access token" is on.
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["POST"], allow_credentials=True,
                       allow_headers=["content-type", "x-namespace", "authorization"])
    return app


def codec_app_from(settings: ServiceSettings) -> FastAPI:
    codec = codec_from(settings.secret("payload_keys"))
    if codec is None:
        raise SettingsError("JOURNEYS_PAYLOAD_KEYS is not set: the codec server needs the keys payloads are "
                            "encrypted with")
    origins = [origin.strip() for origin in settings.codec_cors_origins.split(",") if origin.strip()]
    return create_codec_app(codec, origins=origins, token=settings.secret("codec_token"))


def serve_codec(settings: ServiceSettings, host: str, port: int) -> None:
    """`journeys codec-server`: serve until SIGINT or SIGTERM."""
    uvicorn.run(codec_app_from(settings), host=host, port=port, log_level="info")


async def serve_codec_until(settings: ServiceSettings, host: str, port: int, stop: asyncio.Event) -> None:
    """In this event loop until ``stop`` is set (``journeys dev`` runs it beside the worker)."""
    server = _EmbeddedServer(uvicorn.Config(codec_app_from(settings), host=host, port=port, log_level="warning"))
    watcher = asyncio.create_task(_exit_on(stop, server))
    try:
        await server.serve()
    finally:
        watcher.cancel()


class _EmbeddedServer(uvicorn.Server):
    """Leaves signals to the process it runs in (as processes/http.py's does)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _exit_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True
