"""GET /l/{code}: a tracked short link. The request is counted; the first click becomes
the link's `link_clicked` event (HEAD requests and preview bots are not clicks: see
core/sms/links.py); the visitor is redirected to the target."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ServicesDep
from api.edge import EdgeRoute
from core.clock import utcnow
from core.sms.links import LinkExpired, record_click

router = APIRouter(tags=["links"], route_class=EdgeRoute)

NOT_FOUND_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Link not found</title>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto"><h1>This link does not work</h1>
<p>It may have been mistyped or cut short. Please check the message you received.</p></body></html>"""

GONE_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Link expired</title>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto"><h1>This link has expired</h1>
<p>It was sent a long time ago and no longer leads anywhere.</p></body></html>"""


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"content": {"text/html": {}}, "description": "Unknown link"},
    410: {"content": {"text/html": {}}, "description": "A link past retention (docs/operations.md \"Retention\")"},
}


@router.get("/l/{code}", operation_id="follow_link", response_class=RedirectResponse, status_code=302,
            responses=_NOT_FOUND)
@router.head("/l/{code}", operation_id="check_link", response_class=RedirectResponse, status_code=302,
             responses=_NOT_FOUND, summary="The same redirect; a HEAD request is counted, never a click")
async def follow_link(request: Request, svc: ServicesDep,
                      code: str = Path(max_length=16, pattern=r"^[A-Za-z0-9]+$")) -> Response:
    try:
        target = await record_click(svc.router, code, at=utcnow(), user_agent=request.headers.get("user-agent", ""),
                                    method=request.method)
    except LinkExpired:
        return HTMLResponse(GONE_PAGE, status_code=410)
    if target is None:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
    return RedirectResponse(target, status_code=302)
