"""The dashboard (docs/reports.md, "The dashboard"): the journey and program reports as
pages, for people who would rather look than read. Server-rendered HTML with inline SVG,
no JavaScript. Signed in with the API token through a form (a cookie holding an HMAC of
it), or with the bearer header like the rest of the API."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security.utils import get_authorization_scheme_param
from fastapi.templating import Jinja2Templates

import api.dashboard
from api.dashboard import charts
from api.dashboard.formats import FILTERS
from api.dashboard.session import end_session, safe_next, signed_in, start_session, token_matches
from api.deps import ServicesDep
from api.edge import EdgeRoute
from api.routes.reports import JourneyPath, SinceQuery, UntilQuery, VersionQuery
from core.clock import utcnow
from core.reports.journey import JourneyReport, Unknown, journey_report
from core.reports.period import parse_bound
from core.reports.program import program_report

router = APIRouter(prefix="/dashboard", tags=["dashboard"], route_class=EdgeRoute, include_in_schema=False)

_HERE = Path(api.dashboard.__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")
templates.env.globals["charts"] = charts
templates.env.filters.update(FILTERS)
# No script, no frame, nothing from elsewhere: the pages are HTML, SVG and one style sheet.
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                                       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}


def _page(request: Request, name: str, context: dict[str, Any], code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=code)
    response.headers.update(_HEADERS)
    return response


def _refused(request: Request) -> Response | None:
    """None for a signed-in visitor (the cookie, or a valid bearer header); else the
    answer: a wrong bearer token is refused, anyone else is sent to the login form."""
    token = request.app.state.services.api_token
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return None if token_matches(credentials, token) else _page(
            request, "login.html", {"error": "This token is not valid.", "next": "/dashboard"}, 403)
    if signed_in(request, token):
        return None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/login?next={quote(safe_next(target), safe='/')}",
                            status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})


def _period(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None, str | None]:
    found: dict[str, datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            found[name] = parse_bound(text, end=name == "until") if text else None
        except ValueError as err:
            return None, None, f"{name}: {err}"
    return found["since"], found["until"], None


# --- signing in ---------------------------------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    return _page(request, "login.html", {"error": None, "next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, svc: ServicesDep, token: Annotated[str, Form(max_length=512)] = "",
                next: Annotated[str, Form(max_length=512)] = "") -> Response:
    if not token_matches(token, svc.api_token):
        return _page(request, "login.html", {"error": "This token is not valid.", "next": safe_next(next)}, 403)
    response = RedirectResponse(safe_next(next), status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})
    start_session(response, request, svc.api_token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/dashboard/login", status.HTTP_303_SEE_OTHER)
    end_session(response, request)
    return response


@router.get("/dashboard.css")
async def style_sheet() -> Response:
    return Response((_HERE / "static" / "dashboard.css").read_text(), media_type="text/css",
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


# --- the pages -----------------------------------------------------------------------------------

def _report(svc: Any, journey_id: str, since: datetime | None, until: datetime | None,
            version: str | None = None) -> JourneyReport:
    pinned = svc.catalog.journeys.get(journey_id)
    return journey_report(svc.db, journey_id, settings=svc.catalog.settings,
                          current=pinned.journey if pinned else None,
                          current_version=pinned.version if pinned else None,
                          since=since, until=until, version=version)


@router.get("", response_class=HTMLResponse)
async def journeys(request: Request, svc: ServicesDep, since: SinceQuery = None, until: UntilQuery = None) -> Response:
    """Every journey of the catalog with its current version's headline figures."""
    if (refused := _refused(request)) is not None:
        return refused
    start, end, error = _period(since, until)
    if error:
        return _page(request, "journeys.html", {"error": error, "reports": [], "since": since, "until": until}, 400)

    def all_reports() -> list[JourneyReport]:
        return [_report(svc, journey_id, start, end) for journey_id in sorted(svc.catalog.journeys)]

    reports = await asyncio.to_thread(all_reports)
    return _page(request, "journeys.html", {"error": None, "reports": reports, "since": since, "until": until})


@router.get("/journeys/{journey_id}", response_class=HTMLResponse)
async def journey(request: Request, journey_id: JourneyPath, svc: ServicesDep, since: SinceQuery = None,
                  until: UntilQuery = None, version: VersionQuery = None) -> Response:
    """Each version's graph with its counts, its funnel and its splits."""
    if (refused := _refused(request)) is not None:
        return refused
    start, end, error = _period(since, until)
    context: dict[str, Any] = {"journey_id": journey_id, "since": since, "until": until, "version": version,
                               "report": None, "error": error}
    if error:
        return _page(request, "journey.html", context, 400)
    try:
        context["report"] = await asyncio.to_thread(_report, svc, journey_id, start, end, version)
    except Unknown as err:
        context["error"] = str(err)
        return _page(request, "journey.html", context, 404)
    return _page(request, "journey.html", context)


@router.get("/program", response_class=HTMLResponse)
async def program(request: Request, svc: ServicesDep, since: SinceQuery = None, until: UntilQuery = None) -> Response:
    """Subscriber growth, cohort retention, CLV and the loyalty program."""
    if (refused := _refused(request)) is not None:
        return refused
    start, end, error = _period(since, until)
    context: dict[str, Any] = {"since": since, "until": until, "report": None, "error": error}
    if error:
        return _page(request, "program.html", context, 400)
    context["report"] = await asyncio.to_thread(program_report, svc.db, since=start, until=end or utcnow())
    context["currency"] = svc.catalog.settings.costs.currency
    return _page(request, "program.html", context)
