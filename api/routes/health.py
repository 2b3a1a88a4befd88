"""Liveness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import ServicesDep
from api.edge import EdgeRoute
from api.metrics import SCRAPED
from store.db import session_scope

router = APIRouter(tags=["operations"], route_class=EdgeRoute)


@router.get("/healthz")
async def healthz(svc: ServicesDep) -> JSONResponse:
    """200 when the database and Temporal answer; 503 otherwise (with which one failed)."""
    checks: dict[str, str] = {}
    try:
        with session_scope(svc.db, readonly=True) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:  # a health check reports, it does not raise
        checks["database"] = f"error: {type(err).__name__}"
    try:
        await svc.router.client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"error: {type(err).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503)


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(SCRAPED), media_type=CONTENT_TYPE_LATEST)
