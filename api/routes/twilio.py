"""Twilio's webhooks: inbound messages and delivery receipts. Both check the
X-Twilio-Signature first: a forged request gets a 403 and changes nothing."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response

from api.deps import ServicesDep, TwilioForm
from api.edge import EdgeRoute
from core.clock import utcnow
from core.sms.receipts import apply_receipt
from messaging.phone import InvalidPhoneNumber, to_e164

router = APIRouter(prefix="/twilio", tags=["twilio"], route_class=EdgeRoute)

MAX_SID = 64  # Twilio's are 34 characters (SM + 32 hex)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _twiml() -> Response:
    # Replies are sent through the REST API (so they are recorded), not as TwiML.
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post("/inbound", response_class=Response, responses={
    200: {"content": {"application/xml": {}}}, 400: {"description": "No MessageSid, or one too long"}})
async def inbound(form: TwilioForm, svc: ServicesDep) -> Response:
    """An SMS from a customer: STOP and friends, START/YES, HELP, or a reply to a question.
    Acted on once per MessageSid: a repeated delivery changes nothing and gets the same answer."""
    sid = form.get("MessageSid", "")
    if not 0 < len(sid) <= MAX_SID:
        raise HTTPException(400, f"MessageSid is required (at most {MAX_SID} characters): it makes the message once")
    try:
        phone = to_e164(form.get("From", ""), svc.catalog.settings.default_country)
    except (InvalidPhoneNumber, ValueError):
        return _twiml()  # short codes, alphanumeric senders: nobody we could text back
    await svc.inbound.handle(form.get("Body", ""), at=utcnow(), message_sid=sid, phone=phone)
    return _twiml()


@router.post("/status", status_code=204, response_class=Response)
async def delivery_status(form: TwilioForm, svc: ServicesDep,
                          m: str | None = Query(default=None, description="Our message id",
                                                pattern=r"^[0-9a-f]{32}$")) -> Response:
    """A delivery receipt: applied once, never moving a message backwards."""
    await apply_receipt(svc.router, form.get("MessageSid", ""), form.get("MessageStatus", ""),
                        form.get("ErrorCode") or None, utcnow(), message_id=m)
    return Response(status_code=204)
