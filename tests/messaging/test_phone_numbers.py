from __future__ import annotations

import pytest

from messaging.phone import InvalidPhoneNumber, mask, sms_refusal, to_e164


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("+1 415 555 2671", "SE", "+14155552671"),  # an explicit +country wins
        ("+44 7400 123456", "US", "+447400123456"),
        ("07400 123456", "GB", "+447400123456"),
        ("+45 20 12 34 56", "US", "+4520123456"),  # fixed line or mobile: Denmark does not tell
        ("+44 56 1234 5678", "US", "+445612345678"),  # VoIP numbers often take texts
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


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        ("+1 900 234 5678", "premium_rate", "a premium-rate number (+1 (US)): it cannot take a text"),
        ("+44 901 234 5678", "premium_rate", "a premium-rate number (+44 (GB))"),
        ("+46 77 123 45 67", "shared_cost", "a shared-cost number (+46 (SE))"),
        ("+1 800 234 5678", "toll_free", "a toll-free number (+1 (US))"),
        ("+44 55 1234 5678", "uan", "a company access number (UAN) (+44 (GB))"),
        ("+44 7640 123456", "pager", "a pager number"),
        ("+44 70 1234 5678", "personal_number", "a personal (follow-me) number"),
        ("+1 500 234 5678", "personal_number", "a personal (follow-me) number (+1 (US))"),
        ("+49 177 99 1234567", "voicemail", "a voicemail access number"),
        ("+44 121 234 5678", "landline", "a landline (+44 (GB)): it cannot take a text"),
        ("08-12 34 56", "landline", "a landline (+46 (SE))"),
        ("+882 34 2123 4", "non_geographic", "a non-geographic number (+882): it cannot take a text"),
        ("+883 5100 12345", "non_geographic", "a non-geographic number (+883)"),
        ("+870 301 234 567", "non_geographic", "a non-geographic number (+870)"),
        ("+979 1234 56789", "non_geographic", "a non-geographic number (+979)"),
    ],
)
def test_numbers_that_cannot_take_a_text_are_refused(raw: str, reason: str, words: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        to_e164(raw, "SE" if raw.startswith("0") else "US")
    assert caught.value.reason == reason and words in str(caught.value)
    digits = "".join(ch for ch in raw if ch.isdigit())
    assert digits[-6:] not in str(caught.value)


def test_a_stored_number_is_checked_again_at_send_time() -> None:
    refusal = sms_refusal("+19002345678")
    assert refusal is not None and refusal.reason == "premium_rate"
    assert sms_refusal("+12015550123") is None and sms_refusal("+46701234567") is None


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
