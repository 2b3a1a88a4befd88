"""The HTTP service: events in, Twilio webhooks, tracked links, customers, health."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from api.edge import EdgeRoute
from api.errors import validation_error
from api.limits import BODY_LIMITS, DEFAULT_BODY, MAX_BATCH, MAX_ENROLL, MAX_JSON_DEPTH
from api.metrics import SCRAPED, DatabaseCollector
from api.routes import (
    commerce,
    controls,
    coupons,
    customers,
    dashboard,
    email,
    email_events,
    enrollments,
    events,
    health,
    imports,
    links,
    loyalty,
    reports,
    rewards,
    segments,
    twilio,
)
from api.services import Services


def create_app(services: Services | Callable[[], Awaitable[Services]]) -> FastAPI:
    """``services``: ready-made (tests), or a factory run at start-up (the server)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services if isinstance(services, Services) else await services()
        collector = DatabaseCollector(app.state.services.db)
        SCRAPED.register(collector)
        try:
            yield
        finally:
            SCRAPED.unregister(collector)

    # The docs pages load Swagger UI and ReDoc from this service, never from a CDN.
    app = FastAPIOffline(
        title="Loyalty journeys",
        version="0.1.0",
        description="Events in, SMS out: the HTTP edge of the journey engine. Authenticate with "
                    "`Authorization: Bearer $JOURNEYS_API_TOKEN` (the Twilio, Shopify, WooCommerce, Mailgun and "
                    "Postmark webhooks check the platform's signature or password instead; tracked links and health "
                    "checks are public).\n\n" + _LIMITS,
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    for module in (events, customers, imports, loyalty, rewards, coupons, segments, reports, dashboard, twilio, links,
                   commerce, email, email_events, enrollments, controls, health):
        # The token, body limit and strict JSON are checked by the route class: no route without it.
        assert all(isinstance(r, EdgeRoute) for r in module.router.routes if isinstance(r, APIRoute)), module
        app.include_router(module.router)
    return app


_LIMITS = (
    "Limits: the token is checked before the body is read (401/403); a body larger than its route's limit gets "
    "413 (" + ", ".join(f"`{path}` {limit.text}" for path, limit in BODY_LIMITS.items())
    + f", any other {DEFAULT_BODY.text}); `POST /events` takes at most {MAX_BATCH} events, "
    f"`POST /journeys/{{journey_id}}/enrollments` at most {MAX_ENROLL} customers; a JSON body with "
    f"`NaN`, `Infinity`, a lone surrogate or more than {MAX_JSON_DEPTH} levels of nesting gets 400; a 422 names "
    "the field and repeats at most 100 characters of the value."
)
