from __future__ import annotations

import pytest

from messaging.phone import InvalidPhoneNumber, mask, to_e164


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("+1 415 555 2671", "SE", "+14155552671"),  # an explicit +country wins
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("070-123 45 67", "SE", "+46701234567"),
        ("0701234567", "se", "+46701234567"),  # region case does not matter
    ],
)
def test_valid_numbers_become_e164(raw: str, country: str, expected: str) -> None:
    assert to_e164(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country", "reason", "words"),
    [
        ("call me maybe", "US", "not_a_number", "not a phone number"),
        ("", "US", "not_a_number", "not a phone number"),
        ("415", "US", "too_short", "too short"),
        ("+1 415 555 267", "US", "too_short", "too short for +1 (US)"),
        ("415555267112345", "US", "too_long", "too long"),
        ("555-2671", "US", "local_only", "area code"),
        ("+999 1234567", "US", "invalid_country_code", "country calling code"),
        ("0701234567", "US", "invalid_number", "not a valid number for +1 (US)"),
        ("+1 123 456 7890", "US", "invalid_number", "not a valid number"),
    ],
)
def test_invalid_numbers_say_why(raw: str, country: str, reason: str, words: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        to_e164(raw, country)
    assert caught.value.reason == reason
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_error_messages_never_repeat_the_number() -> None:
    for raw in ("+1 415 555 267", "0701234567", "415555267112345"):
        with pytest.raises(InvalidPhoneNumber) as caught:
            to_e164(raw, "US")
        digits = "".join(ch for ch in raw if ch.isdigit())
        assert digits[-6:] not in str(caught.value)


def test_unknown_default_country_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="default country") as caught:
        to_e164("4155552671", "XX")
    assert not isinstance(caught.value, InvalidPhoneNumber)


def test_mask_keeps_only_the_last_digits() -> None:
    assert mask("+14155552671") == "***671"
    assert mask("+46701234567") == "***567"
    assert mask("+123456") == "***56"
    assert mask("12") == "***"
    assert mask("") == "***"
