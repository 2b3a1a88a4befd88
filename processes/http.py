"""The HTTP service as a process: its services wired from the settings, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from api.access_log import log_config
from api.app import create_app
from api.metrics import MULTIPROCESS_DIR
from api.services import Services
from processes.heap import freeze_startup_heap
from processes.logs import TEXT_FORMAT, JsonLines, MaskingText
from processes.senders import build_email_sender
from processes.settings import ServiceSettings, SettingsError
from processes.wiring import open_migrated_database, wire

log = logging.getLogger(__name__)


async def build_services(settings: ServiceSettings, journeys_dir: Path | None = None) -> Services:
    wiring = await wire(settings, journeys_dir=journeys_dir)
    return Services.build(wiring.catalog, wiring.db, wiring.router,
                          api_token=settings.secret("api_token"),
                          twilio_auth_token=settings.secret("twilio_auth_token"), public_url=settings.public_url,
                          shopify_webhook_secret=settings.secret("shopify_webhook_secret"),
                          woocommerce_webhook_secret=settings.secret("woocommerce_webhook_secret"),
                          mailgun_webhook_signing_key=settings.secret("mailgun_webhook_signing_key"),
                          postmark_webhook_password=settings.secret("postmark_webhook_password"),
                          email_sender=build_email_sender(settings))


async def serving_services(settings: ServiceSettings) -> Services:
    """The services of a process that is the API's alone (`journeys api`): built, then its
    heap frozen (processes/heap.py)."""
    services = await build_services(settings)
    log.info("heap frozen: %d objects kept out of garbage collection (API process %d)", freeze_startup_heap(),
             os.getpid())
    return services


def check_api_settings(settings: ServiceSettings) -> None:
    """Refuse to start (before binding a port) without the token the API requires."""
    if not settings.secret("api_token"):
        raise SettingsError("JOURNEYS_API_TOKEN is not set: the events API needs a bearer token")


def serve(settings: ServiceSettings, host: str, port: int, processes: int = 1) -> None:
    """`journeys api`: serve until SIGINT or SIGTERM; with ``processes`` > 1, that many
    uvicorn worker processes on the one port, their metrics added up (prometheus_client's
    multiprocess mode, in a directory of this run's)."""
    check_api_settings(settings)
    log_config = api_log_config(settings)  # access lines without query strings (tokens)
    if processes == 1:
        uvicorn.run(create_app(lambda: serving_services(settings)), host=host, port=port, log_level="info",
                    log_config=log_config)
        return
    open_migrated_database(settings).dispose()  # migrated once, not N times at once
    with tempfile.TemporaryDirectory(prefix="journeys-api-metrics-") as metrics:
        os.environ[MULTIPROCESS_DIR] = metrics  # the children read it as they start
        uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=processes, host=host, port=port,
                    log_level="info", log_config=log_config)


def app_from_environment() -> FastAPI:
    """The app of one of `journeys api --processes N`'s processes: its settings read from
    the environment, like its parent's."""
    return create_app(lambda: serving_services(ServiceSettings()))


def api_log_config(settings: ServiceSettings) -> dict[str, object]:
    """uvicorn's configuration (no query strings), and the engine's lines (the root logger)
    from INFO on, phone numbers masked (processes/logs.py); with JOURNEYS_LOG_FORMAT=json,
    uvicorn's lines and the engine's as JSON objects, one a line."""
    config = log_config()
    if settings.log_format == "json":
        config["formatters"] = {"default": {"()": JsonLines}, "access": {"()": JsonLines}}
        config["root"] = {"handlers": ["default"], "level": "INFO"}
        return config
    formatters, handlers = config["formatters"], config["handlers"]
    assert isinstance(formatters, dict) and isinstance(handlers, dict)
    formatters["engine"] = {"()": MaskingText, "fmt": TEXT_FORMAT}
    handlers["engine"] = {"class": "logging.StreamHandler", "formatter": "engine", "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["engine"], "level": "INFO"}
    return config


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the process it runs in (it would take
    SIGINT and SIGTERM over, and raise them again after it stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_until(settings: ServiceSettings, host: str, port: int, stop: asyncio.Event, *,
                      journeys_dir: Path | None = None) -> None:
    """Serve in this event loop until ``stop`` is set (``journeys dev`` runs it beside the worker)."""
    check_api_settings(settings)
    server = _EmbeddedServer(uvicorn.Config(create_app(lambda: build_services(settings, journeys_dir)),
                                            host=host, port=port, log_level="warning",
                                            log_config=log_config()))

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_when_asked())
    try:
        await server.serve()
    finally:
        watcher.cancel()
