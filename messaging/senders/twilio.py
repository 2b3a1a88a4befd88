"""Send through Twilio's Messages API with the official SDK, and sort its failures.

Message create has no idempotency key, so the failure class matters: only a
request that certainly created nothing is retryable (see `base.classify`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ClosedPoolError, ConnectTimeoutError, MaxRetryError

from messaging.phone import mask
from messaging.senders.base import (
    AmbiguousProviderError,
    OutgoingSms,
    ProviderError,
    ProviderMessage,
    ProviderReceipt,
    RetryableProviderError,
    classify,
)

# Enough for the messages one customer gets around one send.
LOOKUP_LIMIT = 50


class TwilioSender:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str | None = None,
        from_number: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ):
        if not (messaging_service_sid or from_number):
            raise ValueError("TwilioSender needs messaging_service_sid or from_number")
        if timeout <= 0:
            raise ValueError("the Twilio HTTP timeout must be positive")
        self.timeout = timeout
        self._messaging_service_sid = messaging_service_sid
        self._from_number = from_number
        # The SDK has no timeout by default: a hung connection would hold a worker slot forever.
        self._client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            # The SDK's own switch: the Api domain builds every v2010 URL from base_url.
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"TWILIO_API_BASE_URL must be an http(s) URL, not {base_url!r}")
            self._client.api.base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._client.api.base_url

    def send(self, sms: OutgoingSms) -> ProviderReceipt:
        params: dict[str, Any] = {"to": sms.to, "body": sms.body}
        if self._messaging_service_sid:
            params["messaging_service_sid"] = self._messaging_service_sid
        if self._from_number:
            params["from_"] = self._from_number
        if sms.media_url:
            params["media_url"] = [sms.media_url]
        if sms.status_callback:
            params["status_callback"] = sms.status_callback
        try:
            message = self._client.messages.create(**params)
        # `from None` throughout: the SDK's errors quote the recipient's number, and the
        # cause chain would carry it into logs and Temporal's history.
        except (TwilioRestException, TwilioServiceException) as err:
            raise _from_http_error(err, sms.to) from None
        except requests.exceptions.RequestException as err:
            raise _from_transport_error(err) from None
        if not message.sid:
            raise AmbiguousProviderError("Twilio answered without a message sid")
        return ProviderReceipt(provider_message_id=message.sid, status=str(message.status or "queued"))

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Twilio's Messages list for ``To``, newest first. Not filtered by DateSent: a
        message still queued has none yet; the caller matches on the body and the time."""
        try:
            listed = self._client.messages.list(to=to, limit=LOOKUP_LIMIT, page_size=LOOKUP_LIMIT)
        except (TwilioRestException, TwilioServiceException) as err:
            raise RetryableProviderError(f"Twilio could not list messages: HTTP {err.status}") from None
        except requests.exceptions.RequestException as err:
            raise RetryableProviderError(f"could not reach Twilio to list messages: {type(err).__name__}") from None
        found = [ProviderMessage(provider_message_id=m.sid or "", body=m.body or "", status=str(m.status or ""),
                                 created_at=m.date_created) for m in listed]
        return [m for m in found if m.provider_message_id and (m.created_at is None or m.created_at >= since)]


def _from_http_error(err: TwilioRestException | TwilioServiceException, to: str) -> ProviderError:
    status = int(err.status)
    # Without a Twilio code in the body, the SDK puts the HTTP status in `code`.
    code = str(err.code) if err.code is not None and err.code != status else None
    text = err.msg if isinstance(err, TwilioRestException) else (err.detail or err.title)
    message = f"Twilio refused the message: {_redact(text or f'HTTP {status}', to)}"
    return classify(status, code)(message, code, http_status=status)


def _redact(text: str, to: str) -> str:
    """Twilio's messages quote the number ("The 'To' number +1... is not valid"): mask it."""
    if not to:
        return text
    return text.replace(to, mask(to)).replace(to.lstrip("+"), mask(to))


def _from_transport_error(err: requests.exceptions.RequestException) -> ProviderError:
    if isinstance(err, requests.exceptions.ConnectTimeout) or _never_sent(err):
        return RetryableProviderError(f"could not reach Twilio, nothing was sent: {type(err).__name__}")
    # A read timeout, a reset mid-response, a broken body: Twilio may have the message.
    return AmbiguousProviderError(f"Twilio may have received the message: {type(err).__name__}")


def _never_sent(err: requests.exceptions.RequestException) -> bool:
    """Connection refused, DNS failure, connect timeout: the request never left."""
    if type(err) is not requests.exceptions.ConnectionError or not err.args:
        return False
    cause = err.args[0]
    if isinstance(cause, MaxRetryError):
        # NewConnectionError and NameResolutionError are ConnectTimeoutErrors in urllib3 2.
        return isinstance(cause.reason, ConnectTimeoutError)
    return isinstance(cause, ClosedPoolError)
