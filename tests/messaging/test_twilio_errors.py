"""Every failure class, produced by a real server and seen through the real SDK."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fake_twilio import FakeTwilio, closed_port_url, unanswered_port_url

from messaging.senders import (
    CARRIER_OPT_OUT_CODES,
    UNUSABLE_NUMBER_CODES,
    AmbiguousProviderError,
    OutgoingSms,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from messaging.senders.twilio import TwilioSender

ACCOUNT = "AC" + "0123456789abcdef" * 2
TO = "+14155552671"


def _sender(url: str, timeout: float = 5.0, **options: Any) -> TwilioSender:
    options.setdefault("messaging_service_sid", "MG" + "1" * 32)
    return TwilioSender(ACCOUNT, "token", base_url=url, timeout=timeout, **options)


def _sms(**fields: Any) -> OutgoingSms:
    return OutgoingSms(**{"to": TO, "body": "Hi Ana", "message_key": "run-7:step-2", **fields})


def test_request_goes_to_the_local_server_with_every_field(fake_twilio: FakeTwilio) -> None:
    sms = _sms(status_callback="https://shop.example.com/twilio/status",
               media_url="https://shop.example.com/card.png")
    receipt = _sender(fake_twilio.url, from_number="+15005550001").send(sms)
    assert receipt.provider_message_id == "SM" + "f" * 32 and receipt.status == "queued"
    [request] = fake_twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert request.form == {
        "To": [TO], "Body": ["Hi Ana"], "MessagingServiceSid": ["MG" + "1" * 32],
        "From": ["+15005550001"], "StatusCallback": ["https://shop.example.com/twilio/status"],
        "MediaUrl": ["https://shop.example.com/card.png"],
    }
    assert request.headers["Authorization"].startswith("Basic ")


def test_optional_fields_are_left_out(fake_twilio: FakeTwilio) -> None:
    _sender(fake_twilio.url).send(_sms())
    assert set(fake_twilio.requests[0].form) == {"To", "Body", "MessagingServiceSid"}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 21610, PermanentProviderError),  # unsubscribed at the carrier
        (400, 21211, PermanentProviderError),  # invalid To
        (400, 21614, PermanentProviderError),  # not a mobile number
        (400, 21612, PermanentProviderError),  # cannot route to this number
        (400, 21408, PermanentProviderError),  # region not enabled
        (400, 21606, PermanentProviderError),  # From cannot send SMS
        (401, 20003, PermanentProviderError),  # authentication failed
        (400, 21999, PermanentProviderError),  # any other 4xx
        (404, 20404, PermanentProviderError),
        (429, 20429, RetryableProviderError),  # rate limited: nothing was created
        (500, 20500, AmbiguousProviderError),  # 5xx: Twilio may have created it
        (503, 20503, AmbiguousProviderError),
    ],
)
def test_twilio_error_codes(fake_twilio: FakeTwilio, status: int, code: int, expected: type) -> None:
    fake_twilio.fail(status, code, "Attempt to send to unsubscribed recipient")
    with pytest.raises(ProviderError) as caught:
        _sender(fake_twilio.url).send(_sms())
    assert type(caught.value) is expected
    assert caught.value.code == str(code) and caught.value.http_status == status
    assert caught.value.reason == f"provider_error:{code}"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(("status", "expected"), [(429, RetryableProviderError),
                                                  (502, AmbiguousProviderError),
                                                  (403, PermanentProviderError)])
def test_bodies_without_a_twilio_code(fake_twilio: FakeTwilio, status: int, expected: type) -> None:
    fake_twilio.fail(status, None)
    with pytest.raises(expected) as caught:
        _sender(fake_twilio.url).send(_sms())
    assert caught.value.code is None and caught.value.http_status == status


def test_suppression_codes_come_through(fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail(400, 21610, "Attempt to send to unsubscribed recipient")
    with pytest.raises(PermanentProviderError) as caught:
        _sender(fake_twilio.url).send(_sms())
    assert caught.value.code in CARRIER_OPT_OUT_CODES
    fake_twilio.fail(400, 21211, "Invalid 'To' Phone Number")
    with pytest.raises(PermanentProviderError) as caught:
        _sender(fake_twilio.url).send(_sms())
    assert caught.value.code in UNUSABLE_NUMBER_CODES


def test_error_messages_do_not_carry_the_number(fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail(400, 21211, f"The 'To' number {TO} is not a valid phone number.")
    with pytest.raises(PermanentProviderError) as caught:
        _sender(fake_twilio.url).send(_sms())
    text = str(caught.value)
    assert "is not a valid phone number" in text and "***671" in text
    assert "4155552671" not in text


def test_stall_after_the_request_is_ambiguous(fake_twilio: FakeTwilio) -> None:
    fake_twilio.stall(seconds=10)
    started = time.monotonic()
    with pytest.raises(AmbiguousProviderError):
        _sender(fake_twilio.url, timeout=0.5).send(_sms())
    assert time.monotonic() - started < 5  # the configured timeout cut it short
    assert len(fake_twilio.requests) == 1  # Twilio did get it: sending again could duplicate


def test_hang_up_after_the_request_is_ambiguous(fake_twilio: FakeTwilio) -> None:
    fake_twilio.hang_up()
    with pytest.raises(AmbiguousProviderError):
        _sender(fake_twilio.url).send(_sms())
    assert len(fake_twilio.requests) == 1


def test_reset_mid_response_is_ambiguous(fake_twilio: FakeTwilio) -> None:
    fake_twilio.cut_body()
    with pytest.raises(AmbiguousProviderError):
        _sender(fake_twilio.url).send(_sms())


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(RetryableProviderError) as caught:
        _sender(closed_port_url()).send(_sms())
    assert caught.value.code is None


def test_unknown_host_is_retryable() -> None:
    with pytest.raises(RetryableProviderError):
        _sender("http://twilio-fake.invalid", timeout=2).send(_sms())


def test_connect_timeout_is_retryable() -> None:
    with unanswered_port_url() as url, pytest.raises(RetryableProviderError):
        _sender(url, timeout=0.5).send(_sms())


def test_sender_recovers_after_a_failure(fake_twilio: FakeTwilio) -> None:
    sender = _sender(fake_twilio.url)
    fake_twilio.fail(429, 20429, "Too Many Requests")
    with pytest.raises(RetryableProviderError):
        sender.send(_sms())
    fake_twilio.succeed(sid="SM" + "a" * 32)
    assert sender.send(_sms()).provider_message_id == "SM" + "a" * 32
