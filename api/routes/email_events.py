"""Bounces and complaints from email providers (docs/operations.md "Bounces and
complaints"): Mailgun's event webhooks, signed with the webhook signing key inside the
body, and Postmark's bounce and spam-complaint webhooks, behind HTTP basic auth. A
request that is not proven gets 401 and changes nothing; a report of another kind of
event gets 200 and is ignored; a repeated delivery changes nothing."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import ServicesDep
from api.edge import SignedWebhookRoute, json_object
from core.clock import utcnow
from core.customers import email_feedback
from core.intake import email_providers
from core.intake.email_providers import ReportError

router = APIRouter(prefix="/integrations/email", tags=["integrations"], route_class=SignedWebhookRoute)


class EmailEventAnswer(BaseModel):
    ok: bool = True
    ignored: str | None = None  # why nothing was done: not a bounce or complaint, or a repeat
    suppressed: bool = False  # the address is suppressed now


_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "The signature or password is missing or wrong (or none is set): nothing was done"},
    422: {"description": "The report lacks a field it needs (the detail names it)"}}


async def _apply(svc: Any, read: Any, payload: dict[str, Any]) -> EmailEventAnswer:
    try:
        feedback = read(payload)
    except ReportError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from None
    if feedback is None:
        return EmailEventAnswer(ignored="not_a_bounce_or_complaint")
    applied = await run_in_threadpool(email_feedback.apply, svc.db, feedback, utcnow(),
                                      soft_bounce_limit=svc.catalog.settings.email.soft_bounce_limit)
    return EmailEventAnswer(ignored="duplicate" if applied.duplicate else None, suppressed=applied.suppressed)


@router.post("/mailgun", response_model=EmailEventAnswer, responses=_REFUSED)
async def mailgun_event(request: Request, svc: ServicesDep) -> EmailEventAnswer:
    """A Mailgun event webhook (`failed` permanent or temporary, `complained`), signed
    with JOURNEYS_MAILGUN_WEBHOOK_SIGNING_KEY (`signature` in the body). Other events get 200."""
    payload = json_object(await request.body(), "one report")
    if not email_providers.mailgun_signed(svc.mailgun_webhook_signing_key, payload):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing Mailgun signature")
    return await _apply(svc, email_providers.mailgun, payload)


def _basic_password(header: str | None) -> str | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


@router.post("/postmark", response_model=EmailEventAnswer, responses=_REFUSED)
async def postmark_event(request: Request, svc: ServicesDep) -> EmailEventAnswer:
    """A Postmark bounce or spam-complaint webhook, with HTTP basic auth whose password is
    JOURNEYS_POSTMARK_WEBHOOK_PASSWORD (any user name). Other bounce types get 200."""
    expected, given = svc.postmark_webhook_password, _basic_password(request.headers.get("authorization"))
    if not expected or given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing basic auth",
                            headers={"WWW-Authenticate": 'Basic realm="postmark"'})
    return await _apply(svc, email_providers.postmark, json_object(await request.body(), "one report"))
