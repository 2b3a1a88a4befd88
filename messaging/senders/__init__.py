"""Who delivers an SMS: the contract (base), a console sender for development, Twilio."""

from messaging.senders.base import (
    CARRIER_OPT_OUT_CODES,
    PERMANENT_CODES,
    RETRYABLE_CODES,
    UNUSABLE_NUMBER_CODES,
    AmbiguousProviderError,
    OutgoingSms,
    PermanentProviderError,
    ProviderError,
    ProviderReceipt,
    RetryableProviderError,
    SmsSender,
    classify,
)

__all__ = [
    "CARRIER_OPT_OUT_CODES",
    "PERMANENT_CODES",
    "RETRYABLE_CODES",
    "UNUSABLE_NUMBER_CODES",
    "AmbiguousProviderError",
    "OutgoingSms",
    "PermanentProviderError",
    "ProviderError",
    "ProviderReceipt",
    "RetryableProviderError",
    "SmsSender",
    "classify",
]
