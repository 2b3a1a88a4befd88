"""The contract between the send activity and whatever delivers an SMS.

A sender is synchronous (the send activity runs in a thread pool) and tells the
caller, through the class of the error it raises, whether sending again is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class OutgoingSms:
    to: str = field(repr=False)  # E.164; kept out of reprs, which end up in logs
    body: str = field(repr=False)
    message_key: str  # our idempotency key: for logs and metadata, never sent as one
    media_url: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True)
class ProviderReceipt:
    provider_message_id: str
    status: str  # the provider's word for it: "queued", "accepted", "sent", ...


@dataclass(frozen=True, kw_only=True)
class ProviderMessage:
    """A message as the provider's own records show it: how an unknown outcome is settled."""

    provider_message_id: str
    body: str = field(repr=False)
    status: str
    created_at: datetime | None


class SmsSender(Protocol):
    name: str

    def send(self, sms: OutgoingSms) -> ProviderReceipt: ...

    def lookup(self, to: str, since: datetime) -> list[ProviderMessage]:
        """The messages to ``to`` the provider has created since ``since`` (give or take its
        clock), newest first. Raises RetryableProviderError when the provider cannot say."""
        ...


class ProviderError(Exception):
    """The provider did not take the message. `code` is the provider's error code, if any."""

    def __init__(self, message: str, code: str | None = None, *, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status

    @property
    def reason(self) -> str:
        """What a skipped send records: `provider_error:<code>`."""
        if self.code:
            return f"provider_error:{self.code}"
        return f"provider_error:http_{self.http_status}" if self.http_status else "provider_error"

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})" if self.code else self.message


class PermanentProviderError(ProviderError):
    """The provider refused the message; sending again would be refused again."""


class RetryableProviderError(ProviderError):
    """The request certainly created no message: safe to send again later."""


class AmbiguousProviderError(ProviderError):
    """The request may have created a message: the caller must NOT send again."""


# The one classification table, after Twilio's error dictionary
# (https://www.twilio.com/docs/api/errors/<code>): message create has no idempotency
# key, so only 20429 (too many requests) and connection errors (nothing reached
# Twilio) are retried; 21211 (invalid To), 21614 (To not a mobile number), 21612 (To
# not reachable), 21408 (region not enabled), 21610 (recipient unsubscribed), 21606
# (From cannot send) and 20003 (authentication) are permanent. Twilio promises nothing
# for a 5xx, so a 5xx may have created the message and is ambiguous.
RETRYABLE_CODES = frozenset({"20429"})
PERMANENT_CODES = frozenset({"21211", "21614", "21612", "21408", "21610", "21606", "20003"})
# Permanent codes that say something about the recipient (for suppressions):
UNUSABLE_NUMBER_CODES = frozenset({"21211", "21614", "30006"})  # invalid, not mobile, landline
CARRIER_OPT_OUT_CODES = frozenset({"21610"})  # the recipient replied STOP at the carrier


def classify(http_status: int | None, code: str | None) -> type[ProviderError]:
    """Which error an HTTP answer from the provider means."""
    if code in RETRYABLE_CODES or http_status == 429:
        return RetryableProviderError
    if code in PERMANENT_CODES or (http_status is not None and 400 <= http_status < 500):
        return PermanentProviderError
    return AmbiguousProviderError
