"""Phone numbers: normalize to E.164 before storing, mask before logging."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

NON_GEO_REGION = "001"  # phonenumbers' region of the non-geographic country codes


class InvalidPhoneNumber(ValueError):
    """Why a number cannot be texted. Messages never repeat the number (they reach logs)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # short and stable: not_a_number, too_short, landline, premium_rate, ...


_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: ("invalid_country_code", "unknown country calling code"),
    NumberParseException.NOT_A_NUMBER: ("not_a_number", "not a phone number"),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("too_short", "too short after the international prefix"),
    NumberParseException.TOO_SHORT_NSN: ("too_short", "too short to be a phone number"),
    NumberParseException.TOO_LONG: ("too_long", "too long to be a phone number"),
}
_LENGTH_ERRORS = {
    ValidationResult.TOO_SHORT: ("too_short", "too short for {where}"),
    ValidationResult.TOO_LONG: ("too_long", "too long for {where}"),
    ValidationResult.INVALID_LENGTH: ("wrong_length", "wrong number of digits for {where}"),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: ("local_only", "a local number: add the area code"),
    ValidationResult.INVALID_COUNTRY_CODE: ("invalid_country_code", "unknown country calling code"),
}


def to_e164(raw: str, default_country: str) -> str:
    """`raw` as E.164 ("+14155552671"); numbers without +country are read as `default_country`.

    Raises InvalidPhoneNumber when it is not a valid number, ValueError when
    `default_country` is not an ISO 3166 region phonenumbers knows.
    """
    region = default_country.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default country {default_country!r} (use an ISO code like 'US')")
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as err:
        reason, message = _PARSE_ERRORS.get(err.error_type, ("not_a_number", "not a phone number"))
        raise InvalidPhoneNumber(reason, message) from None
    where = _where(number)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _LENGTH_ERRORS:
        reason, message = _LENGTH_ERRORS[possible]
        raise InvalidPhoneNumber(reason, message.format(where=where))
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("invalid_number", f"not a valid number for {where}")
    if refusal := _cannot_text(number):
        raise refusal
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Number types that cannot take a text (phonenumbers.number_type). Texted: MOBILE,
# FIXED_LINE_OR_MOBILE (most of +1: its plan does not tell them apart), VOIP and
# UNKNOWN (a valid number of a type the metadata does not know).
_NO_SMS = {
    PhoneNumberType.FIXED_LINE: ("landline", "a landline"),
    PhoneNumberType.PREMIUM_RATE: ("premium_rate", "a premium-rate number"),
    PhoneNumberType.SHARED_COST: ("shared_cost", "a shared-cost number"),
    PhoneNumberType.TOLL_FREE: ("toll_free", "a toll-free number"),
    PhoneNumberType.UAN: ("uan", "a company access number (UAN)"),
    PhoneNumberType.PAGER: ("pager", "a pager number"),
    PhoneNumberType.PERSONAL_NUMBER: ("personal_number", "a personal (follow-me) number"),
    PhoneNumberType.VOICEMAIL: ("voicemail", "a voicemail access number"),
}


def _cannot_text(number: phonenumbers.PhoneNumber) -> InvalidPhoneNumber | None:
    where = _where(number)
    if phonenumbers.region_code_for_number(number) == NON_GEO_REGION:
        # +800, +808, +870, +881, +882, +883, +888, +979: satellite phones and international
        # networks, billed at premium rates and the favourite targets of SMS pumping.
        return InvalidPhoneNumber("non_geographic", f"a non-geographic number ({where}): it cannot take a text")
    known = _NO_SMS.get(phonenumbers.number_type(number))
    if known is None:
        return None
    reason, what = known
    return InvalidPhoneNumber(reason, f"{what} ({where}): it cannot take a text")


def sms_refusal(e164: str) -> InvalidPhoneNumber | None:
    """Why a stored number cannot take a text (stored before its type was checked), or None."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return InvalidPhoneNumber("not_a_number", "not a phone number")
    return _cannot_text(number)


def _where(number: phonenumbers.PhoneNumber) -> str:
    assert number.country_code is not None  # parse() sets it or raises
    region = phonenumbers.region_code_for_country_code(number.country_code)
    known = region not in (phonenumbers.UNKNOWN_REGION, NON_GEO_REGION)
    return f"+{number.country_code} ({region})" if known else f"+{number.country_code}"


def mask(e164: str) -> str:
    """For logs: only the last digits ("***671"), and none of a number too short to hide."""
    digits = "".join(ch for ch in e164 if ch.isdigit())
    keep = 3 if len(digits) >= 8 else 2 if len(digits) >= 5 else 0
    return "***" + (digits[-keep:] if keep else "")


def time_zones_of(e164: str) -> tuple[str, ...]:
    """The IANA zones phonenumbers places a number in (by area code, else country), sorted;
    empty when it knows none. One number may map to several zones."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return ()
    from phonenumbers import timezone  # the zone tables load on first use, not at import

    return tuple(sorted(name for name in timezone.time_zones_for_number(number) if name != "Etc/Unknown"))
