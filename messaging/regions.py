"""Which region a phone number belongs to: its country (ISO 3166, "US", "DE") and, for a
US number, its state ("US-FL"), as region rules in settings.yaml name them.

The state is that of the area code: NANP area codes never cross a state line. The table
below is libphonenumber's own (its geocoding data, resources/geocoding/en/1.txt, which
names each US area code's state or a place in it, "Miami, FL"), written out because
loading the geocoder costs a worker about 100 MB; tests/runtime/test_regional_rules.py
checks it against the geocoder of the installed phonenumbers, so an upgrade that adds
an area code fails there rather than leaving its state's rules silently unapplied.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException

from messaging.phone import NON_GEO_REGION

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
# Area codes by state (libphonenumber 9.0.43's geocoding data).
AREA_CODES: dict[str, str] = {
    "AK": "907",
    "AL": "205 251 256 334 659 938",
    "AR": "327 479 501 870",
    "AZ": "480 520 602 623 928",
    "CA": ("209 213 279 310 323 341 350 369 408 415 424 442 510 530 559 562 619 626 628 650 657 661 "
           "669 707 714 738 747 760 805 818 820 831 840 858 909 916 925 949 951"),
    "CO": "303 719 720 748 970 983",
    "CT": "203 475 860 959",
    "DC": "202 771",
    "DE": "302",
    "FL": "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 904 941 954",
    "GA": "229 404 470 478 678 706 762 770 912 943",
    "HI": "808",
    "IA": "319 515 563 641 712",
    "ID": "208 986",
    "IL": "217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 872",
    "IN": "219 260 317 463 574 765 812 930",
    "KS": "316 620 785 913",
    "KY": "270 364 502 606 859",
    "LA": "225 318 337 504 985",
    "MA": "339 351 413 508 617 774 781 857 978",
    "MD": "227 240 301 410 443 667",
    "ME": "207",
    "MI": "231 248 269 313 517 586 616 734 810 906 947 989",
    "MN": "218 320 507 612 651 763 952",
    "MO": "235 314 417 557 573 636 660 816 975",
    "MS": "228 601 662 769",
    "MT": "406",
    "NC": "252 336 472 704 743 828 910 919 980 984",
    "ND": "701",
    "NE": "308 402 531",
    "NH": "603",
    "NJ": "201 551 609 640 732 848 856 862 908 973",
    "NM": "505 575",
    "NV": "702 725 775",
    "NY": "212 315 329 332 347 363 516 518 585 607 631 646 680 716 718 838 845 914 917 929 934",
    "OH": "216 220 234 283 326 330 380 419 440 513 567 614 740 937",
    "OK": "405 539 572 580 918",
    "OR": "458 503 541 971",
    "PA": "215 223 267 272 412 445 484 570 582 610 717 724 814 835 878",
    "RI": "401",
    "SC": "803 821 839 843 854 864",
    "SD": "605",
    "TN": "423 615 629 731 865 901 931",
    "TX": ("210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830 832 903 915 "
           "936 940 945 956 972 979"),
    "UT": "385 435 801",
    "VA": "276 434 540 571 686 703 757 804 826 948",
    "VT": "802",
    "WA": "206 253 360 425 509 564",
    "WI": "262 274 353 414 534 608 715 920",
    "WV": "304 681",
    "WY": "307",
}
_STATE_OF_AREA_CODE = {code: state for state, codes in AREA_CODES.items() for code in codes.split()}
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
    if not country or country in (phonenumbers.UNKNOWN_REGION, NON_GEO_REGION):
        return ()
    if country != "US":
        return (country,)
    state = _STATE_OF_AREA_CODE.get(phonenumbers.national_significant_number(number)[:3])
    return ("US", f"US-{state}") if state else ("US",)


def state_by_geocoder(e164: str) -> str | None:
    """The state phonenumbers' geocoder gives a US number (tests check the table with it)."""
    from phonenumbers import geocoder  # about 100 MB: never loaded by the worker

    place = geocoder.description_for_number(phonenumbers.parse(e164, None), "en")
    found = _PLACE_AND_STATE.search(place)
    return found.group(1) if found and found.group(1) in US_STATES else us_state(place)
