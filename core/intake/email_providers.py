"""The bounce and complaint reports of email providers, read into ``Feedback``
(core/customers/email_feedback.py): Mailgun's event webhooks and Postmark's bounce and
spam-complaint webhooks. A report of anything else (a delivery, an open) is ``None``:
acknowledged, ignored. A report that lacks what it needs raises ``ReportError`` naming
the field. Checking who sent it is the route's (api/routes/email_events.py)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from core.customers.email_feedback import Feedback, Kind

MAILGUN = "mailgun"
POSTMARK = "postmark"
# Postmark's bounce types (https://postmarkapp.com/developer/api/bounce-api#bounce-types) that say
# the address cannot take mail, and those that say "not now"; the rest (auto-replies,
# challenge-verification, unsubscribe requests, ...) change nothing.
POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress"})
POSTMARK_SOFT = frozenset({"SoftBounce", "Transient", "DnsError"})


class ReportError(ValueError):
    """The report is not one the provider sends (the message names the field)."""


def _text(value: Any, where: str, *, limit: int = 320) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReportError(f"{where} must be a non-empty string")
    if len(value) > limit:
        raise ReportError(f"{where} is longer than {limit} characters")
    return value.strip()


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"{where} must be an object")
    return value


def mailgun_signed(signing_key: str | None, payload: dict[str, Any]) -> bool:
    """Whether ``signature.signature`` is hex HMAC-SHA256(key, timestamp + token), Mailgun's
    webhook signature, compared in constant time."""
    signature = payload.get("signature")
    if not signing_key or not isinstance(signature, dict):
        return False
    timestamp, token, given = (signature.get(name) for name in ("timestamp", "token", "signature"))
    if not all(isinstance(part, str) and 0 < len(part) <= 256 for part in (timestamp, token, given)):
        return False
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), str(given).encode("ascii", "replace"))


def mailgun(payload: dict[str, Any]) -> Feedback | None:
    data = _object(payload.get("event-data"), "event-data")
    event, severity = data.get("event"), data.get("severity")
    kind: Kind
    if event == "complained":
        kind = "complaint"
    elif event == "failed" and severity == "permanent":
        kind = "hard_bounce"
    elif event == "failed" and severity == "temporary":
        kind = "soft_bounce"
    else:
        return None
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    # Applied once per signature token, not per event id: Mailgun signs the timestamp and
    # token only, not the body, so a captured signature must not carry a second, altered report.
    signature = payload.get("signature")
    token = signature.get("token") if isinstance(signature, dict) else None
    return Feedback(provider=MAILGUN, kind=kind, address=_text(data.get("recipient"), "event-data.recipient"),
                    event_id=_text(token, "signature.token", limit=256),
                    message_id=message_id if isinstance(message_id, str) and len(message_id) <= 255 else None)


def postmark(payload: dict[str, Any]) -> Feedback | None:
    record, bounce = payload.get("RecordType"), payload.get("Type")
    kind: Kind
    if record == "SpamComplaint" or bounce == "SpamComplaint":
        kind = "complaint"
    elif record == "Bounce" and bounce in POSTMARK_HARD:
        kind = "hard_bounce"
    elif record == "Bounce" and bounce in POSTMARK_SOFT:
        kind = "soft_bounce"
    else:
        return None
    event_id = payload.get("ID")
    if isinstance(event_id, bool) or not isinstance(event_id, int | str) or not str(event_id).strip():
        raise ReportError("ID must be the bounce's id (a number)")
    message_id = payload.get("MessageID")  # Postmark's own id: it matches only a row that recorded it
    return Feedback(provider=POSTMARK, kind=kind, address=_text(payload.get("Email"), "Email"),
                    event_id=str(event_id)[:200],
                    message_id=message_id if isinstance(message_id, str) and len(message_id) <= 255 else None)
