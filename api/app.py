"""The HTTP service: events in, Twilio webhooks, tracked links, customers, health."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.metrics import REGISTRY, DatabaseCollector
from api.routes import customers, events, health, imports, links, loyalty, segments, twilio
from api.services import Services


def create_app(services: Services | Callable[[], Awaitable[Services]]) -> FastAPI:
    """``services``: ready-made (tests), or a factory run at start-up (the server)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services if isinstance(services, Services) else await services()
        collector = DatabaseCollector(app.state.services.db)
        REGISTRY.register(collector)
        try:
            yield
        finally:
            REGISTRY.unregister(collector)

    # The docs pages load Swagger UI and ReDoc from this service, never from a CDN.
    app = FastAPIOffline(
        title="Loyalty journeys",
        version="0.1.0",
        description="Events in, SMS out: the HTTP edge of the journey engine. Authenticate with "
                    "`Authorization: Bearer $JOURNEYS_API_TOKEN` (the Twilio webhooks check Twilio's signature "
                    "instead; tracked links and health checks are public).",
        lifespan=lifespan,
    )
    for module in (events, customers, imports, loyalty, segments, twilio, links, health):
        app.include_router(module.router)
    return app
