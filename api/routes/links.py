"""GET /l/{code}: a tracked short link. The click is recorded and becomes a
`link_clicked` event; the customer is redirected to the target."""

from __future__ import annotations

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ServicesDep
from api.edge import EdgeRoute
from core.clock import utcnow
from core.sms.links import record_click

router = APIRouter(tags=["links"], route_class=EdgeRoute)

NOT_FOUND_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Link not found</title>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto"><h1>This link does not work</h1>
<p>It may have been mistyped or cut short. Please check the message you received.</p></body></html>"""


@router.get("/l/{code}", response_class=RedirectResponse, status_code=302,
            responses={404: {"content": {"text/html": {}}, "description": "Unknown link"}})
async def follow_link(svc: ServicesDep, code: str = Path(max_length=16, pattern=r"^[A-Za-z0-9]+$")) -> Response:
    target = await record_click(svc.router, code, at=utcnow())
    if target is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
    return RedirectResponse(target, status_code=302)
