"""The limits of the HTTP edge, in one place (docs/operations.md, "Limits", says them).

Every route's body is counted while it is read: past its limit the request gets 413
and nothing more is read (a Content-Length over it gets 413 before anything is read).
"""

from __future__ import annotations

from dataclasses import dataclass

KB = 1024
MB = 1024 * KB

MAX_BATCH = 500  # events per POST /events
MAX_ENROLL = 500  # customers per POST /journeys/{journey_id}/enrollments
MAX_JSON_DEPTH = 32  # nested arrays and objects in a JSON body
MAX_ECHO = 100  # characters of a rejected value a 422 repeats back


@dataclass(frozen=True)
class BodyLimit:
    bytes: int
    hint: str = ""

    @property
    def text(self) -> str:
        size = self.bytes
        return f"{size // MB} MB" if size % MB == 0 else f"{size // KB} KB" if size % KB == 0 else f"{size} bytes"


DEFAULT_BODY = BodyLimit(256 * KB)
BODY_LIMITS = {
    "/events": BodyLimit(1 * MB, f"send at most {MAX_BATCH} events per request"),
    "/customers/import": BodyLimit(20 * MB, "split the file, or use `journeys import` on the server"),
    # What Twilio posts is a few fields (an SMS is at most 1,600 characters).
    "/twilio/inbound": BodyLimit(64 * KB),
    "/twilio/status": BodyLimit(64 * KB),
    # An order with many line items is tens of KB; the platforms send one resource per call.
    "/integrations/shopify/webhooks": BodyLimit(1 * MB),
    "/integrations/woocommerce/webhooks": BodyLimit(1 * MB),
    # A bounce report may quote the bounce message (Postmark's Content); a few hundred KB at most.
    "/integrations/email/mailgun": BodyLimit(1 * MB),
    "/integrations/email/postmark": BodyLimit(1 * MB),
}


def body_limit(path: str) -> BodyLimit:
    """The limit of the route with this path template (e.g. ``/customers/{customer_id}``)."""
    return BODY_LIMITS.get(path, DEFAULT_BODY)
