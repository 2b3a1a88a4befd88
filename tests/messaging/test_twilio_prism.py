"""The Twilio sender, through the real SDK, against Prism serving Twilio's OpenAPI description."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import prism
import pytest

from messaging.senders import OutgoingSms, PermanentProviderError
from messaging.senders.twilio import TwilioSender

ACCOUNT = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "0123456789abcdef" * 2


def _sender(url: str, **options: Any) -> TwilioSender:
    options.setdefault("messaging_service_sid", SERVICE)
    return TwilioSender(ACCOUNT, "token", base_url=url, timeout=5.0, **options)


def _sms(**fields: Any) -> OutgoingSms:
    return OutgoingSms(**{"to": "+15005550006", "body": "Hi Ana 👋", "message_key": "k1", **fields})


def test_send_returns_the_message_sid(prism_url: str) -> None:
    receipt = _sender(prism_url).send(_sms())
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", receipt.provider_message_id)
    assert receipt.status == "queued"


def test_from_number_instead_of_messaging_service(prism_url: str) -> None:
    sender = _sender(prism_url, messaging_service_sid=None, from_number="+15005550001")
    assert sender.send(_sms()).provider_message_id.startswith("SM")


def test_status_callback_is_accepted(prism_url: str) -> None:
    # (MediaUrl is checked on the fake: Prism wants an array where Twilio takes one value.)
    sms = _sms(status_callback="https://shop.example.com/twilio/status")
    assert _sender(prism_url).send(sms).provider_message_id.startswith("SM")


def test_missing_to_is_rejected_as_permanent(prism_url: str) -> None:
    # A caller bug: no recipient. The SDK drops None parameters, so To is absent.
    with pytest.raises(PermanentProviderError) as caught:
        _sender(prism_url).send(_sms(to=cast(str, None)))
    assert caught.value.http_status == 422 and caught.value.code is None


@pytest.mark.parametrize(
    ("options", "fields"),
    [
        ({"messaging_service_sid": "MG-not-a-sid"}, {}),
        ({}, {"status_callback": "not a url"}),
    ],
)
def test_malformed_requests_are_permanent(prism_url: str, options: dict, fields: dict) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        _sender(prism_url, **options).send(_sms(**fields))
    assert caught.value.http_status == 422
    assert caught.value.reason == "provider_error:http_422"


def test_bad_account_sid_is_rejected(prism_url: str) -> None:
    sender = TwilioSender("ACnope", "token", from_number="+15005550001", base_url=prism_url)
    with pytest.raises(PermanentProviderError):
        sender.send(_sms())


def test_http_timeout_is_set_on_the_sdk_client() -> None:
    sender = TwilioSender(ACCOUNT, "token", from_number="+15005550001", timeout=3.0)
    assert sender._client.http_client.timeout == 3.0
    assert TwilioSender(ACCOUNT, "t", from_number="+15005550001")._client.http_client.timeout == 10.0
    assert sender.base_url == "https://api.twilio.com"  # untouched without base_url


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({}, "messaging_service_sid or from_number"),
        ({"from_number": "+15005550001", "timeout": 0}, "positive"),
        ({"from_number": "+15005550001", "base_url": "127.0.0.1:4010"}, "http(s) URL"),
    ],
)
def test_constructor_rejects_bad_settings(options: dict, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        TwilioSender(ACCOUNT, "token", **options)


def test_missing_prism_fails_and_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setattr(prism, "PRISM", tmp_path / "prism")
    with pytest.raises(pytest.fail.Exception, match="run `npm ci`"), prism.running_prism():
        pass


def test_lookup_lists_the_recipients_messages(prism_url: str) -> None:
    """Settling an unknown outcome asks Twilio's Messages list; Prism checks the request is
    one Twilio takes and answers with its documented example."""
    from datetime import UTC, datetime

    found = _sender(prism_url).lookup("+15005550006", datetime(2000, 1, 1, tzinfo=UTC))
    assert found and all(re.fullmatch(r"(SM|MM)[0-9a-f]{32}", m.provider_message_id) for m in found)
    assert all(isinstance(m.body, str) for m in found)
