"""Which region a phone number belongs to: its country (ISO 3166, "US", "DE") and, for a
US number, its state ("US-FL"), as region rules in settings.yaml name them.

The state comes from phonenumbers' geocoder, which names the area code's state ("Florida")
or, for a known exchange, the place and its USPS code ("New York, NY"). NANP area codes
never cross a state line, so the state of the number is the state of its area code.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException

# USPS codes of the 50 states and DC, by the name phonenumbers' geocoder gives them.
US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "Washington D.C.", "FL": "Florida",
    "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington State", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
_BY_NAME = {name.lower(): code for code, name in US_STATES.items()} | {
    "washington": "WA", "district of columbia": "DC", "washington dc": "DC",
}
_PLACE_AND_STATE = re.compile(r",\s*([A-Z]{2})$")  # "Miami, FL"
REGION_CODE = re.compile(r"^[A-Z]{2}(-[A-Z]{2})?$")


def region_problem(code: str) -> str | None:
    """Why ``code`` is not a region settings.yaml can name, or None."""
    if not REGION_CODE.match(code):
        return (f"{code!r} is not a region code: write an ISO country code (US, CA, DE) "
                "or US- and a state's USPS code (US-FL)")
    country, _, state = code.partition("-")
    if country not in phonenumbers.SUPPORTED_REGIONS:
        return f"{code!r}: {country} is not an ISO 3166 country code"
    if state and country != "US":
        return f"{code!r}: only US states have rules of their own (US-XX); write the country alone"
    if state and state not in US_STATES:
        return f"{code!r}: {state} is not a US state's USPS code"
    return None


def us_state(value: object) -> str | None:
    """A USPS code ("FL") for a state written as its code or its name, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.upper() in US_STATES:
        return text.upper()
    return _BY_NAME.get(text.lower().replace(".", ""), _BY_NAME.get(text.lower()))


def regions_of_number(e164: str) -> tuple[str, ...]:
    """("US", "US-FL") for a Florida number, ("DE",) for a German one, () when unknown."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return ()
    country = phonenumbers.region_code_for_number(number)
    if not country or country in (phonenumbers.UNKNOWN_REGION, "001"):
        return ()
    if country != "US":
        return (country,)
    from phonenumbers import geocoder  # the place tables load on first use, not at import

    place = geocoder.description_for_number(number, "en")
    found = _PLACE_AND_STATE.search(place)
    state = found.group(1) if found and found.group(1) in US_STATES else us_state(place)
    return ("US", f"US-{state}") if state else ("US",)
