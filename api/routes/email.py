"""One-click email unsubscribe (RFC 8058), public like the tracked links: the signed
token is the authority. ``POST`` unsubscribes (what mail clients send for
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, and the confirm page's button);
``GET`` only shows that page, since mail scanners follow every link in a message.
The double opt-in link (``/email/confirm``) works the same way: GET a page, POST confirms."""

from __future__ import annotations

import html
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.deps import ServicesDep
from api.edge import EdgeRoute
from core.clock import utcnow
from core.customers import email_confirmation
from core.customers.unsubscribe import unsubscribe, valid

router = APIRouter(tags=["email"], route_class=EdgeRoute)

Token = Query(min_length=10, max_length=400, pattern=r"^[A-Za-z0-9_.-]+$", alias="t",
              description="The signed token from the email's List-Unsubscribe link")

ConfirmToken = Query(min_length=10, max_length=400, pattern=r"^[A-Za-z0-9_.-]+$", alias="t",
                     description="The signed token from the confirmation email's link")

_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{title}</title>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto"><h1>{title}</h1>{body}</body></html>"""
INVALID_PAGE = _PAGE.format(title="This link does not work",
                            body="<p>It may have been cut short. Please use the link in the email you received.</p>")
DONE_PAGE = _PAGE.format(title="You are unsubscribed", body="<p>You will get no more marketing emails from us.</p>")


@router.get("/email/unsubscribe", operation_id="email_unsubscribe_page", response_class=HTMLResponse,
            responses={400: {"content": {"text/html": {}}, "description": "Not a valid unsubscribe link"}})
async def unsubscribe_page(svc: ServicesDep, t: str = Token) -> HTMLResponse:
    """The confirm page: a button that POSTs. Nothing changes on a GET."""
    if not await run_in_threadpool(valid, svc.db, t):
        return HTMLResponse(INVALID_PAGE, status_code=400)
    action = html.escape(f"/email/unsubscribe?t={quote(t)}")
    return HTMLResponse(_PAGE.format(title="Unsubscribe from our emails?", body=(
        f'<form method="post" action="{action}"><button type="submit">Unsubscribe</button></form>')))


@router.post("/email/unsubscribe", operation_id="email_unsubscribe", response_class=HTMLResponse,
             responses={400: {"content": {"text/html": {}}, "description": "Not a valid unsubscribe link"}})
async def unsubscribe_now(svc: ServicesDep, t: str = Token) -> HTMLResponse:
    """Opt the customer out of email (with the evidence); safe to repeat."""
    done = await run_in_threadpool(unsubscribe, svc.db, t, utcnow())
    if done is None:
        return HTMLResponse(INVALID_PAGE, status_code=400)
    return HTMLResponse(DONE_PAGE)


CONFIRMED_PAGE = _PAGE.format(title="Thank you: your email address is confirmed",
                              body="<p>You will get our marketing emails. Every one has an unsubscribe link.</p>")
NOT_PENDING_PAGE = _PAGE.format(title="Nothing to confirm",
                                body="<p>This request is no longer waiting for a confirmation.</p>")


@router.get("/email/confirm", operation_id="email_confirm_page", response_class=HTMLResponse,
            responses={400: {"content": {"text/html": {}}, "description": "Not a valid confirmation link"}})
async def confirm_page(svc: ServicesDep, t: str = ConfirmToken) -> HTMLResponse:
    """Double opt-in: the page the confirmation email links to, with a button that POSTs.
    Nothing changes on a GET (mail scanners follow links)."""
    if not await run_in_threadpool(email_confirmation.valid, svc.db, t):
        return HTMLResponse(INVALID_PAGE, status_code=400)
    action = html.escape(f"/email/confirm?t={quote(t)}")
    return HTMLResponse(_PAGE.format(title="Confirm your email address", body=(
        f'<form method="post" action="{action}"><button type="submit">Yes, send me emails</button></form>')))


@router.post("/email/confirm", operation_id="email_confirm", response_class=HTMLResponse,
             responses={400: {"content": {"text/html": {}}, "description": "Not a valid confirmation link"}})
async def confirm_now(svc: ServicesDep, t: str = ConfirmToken) -> HTMLResponse:
    """Opt the customer in to email (the evidence: the pending record and this link); safe to repeat."""
    state = await run_in_threadpool(email_confirmation.confirm, svc.db, t, utcnow())
    if state is None:
        return HTMLResponse(INVALID_PAGE, status_code=400)
    return HTMLResponse(CONFIRMED_PAGE if state == "opted_in" else NOT_PENDING_PAGE)
