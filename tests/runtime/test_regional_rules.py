"""Regional rules: the shipped US state rules and settings.yaml ``regions:`` apply on top of
the shop's window and caps (the stricter wins), in every zone the customer may be in;
the timeline and the message row say which region rules applied. A held-out set of send
times, worked out by hand (tests/fixtures/regional_send_times.csv), checks the code."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from core.sms.regional_defaults import SHIPPED
from core.sms.regions import customer_regions, send_regions
from core.sms.windows import Window
from core.sms.zones import SendZones, quiet_hours, send_zones
from language.config import QuietHours, RegionRule, Settings
from language.configuration import load_configuration
from messaging.regions import AREA_CODES, regions_of_number, state_by_geocoder
from store.tables import Customer
from tests.runtime.support import SETTINGS, around, sms, write_journeys

PROMO = """
id: promo
name: Promo
trigger: {event: signup}
steps:
  - id: text
    send_sms: {text: "Hi"}
"""
FOUR_TEXTS = """
id: burst
name: Four texts
trigger: {event: signup}
steps:
  - {id: one, send_sms: {text: "One"}}
  - {id: two, send_sms: {text: "Two"}}
  - {id: three, send_sms: {text: "Three"}}
  - {id: four, send_sms: {text: "Four"}}
"""
# Shop window 21:00-08:00 (tests.runtime.support.SETTINGS), default zone New York.
# 2026-03-03 01:30 UTC (Monday evening): 20:30 in New York, 19:30 in Chicago, 17:30 in
# Los Angeles, 15:30 in Honolulu, 02:30 in London and Berlin.
EVENING = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phone", "expected", "zone", "region"),
    [
        ("+13055550123", "2026-03-03T13:00:00Z", "America/New_York", "US-FL"),  # 20:30: quiet in Florida; 08:00
        ("+12015550123", "2026-03-03T01:30:00Z", "America/New_York", None),  # New Jersey: the shop's 21:00
        ("+14055550123", "2026-03-03T01:30:00Z", "America/Chicago", "US-OK"),  # 19:30 in Oklahoma: before 20:00
        ("+12065550123", "2026-03-03T01:30:00Z", "America/Los_Angeles", "US-WA"),  # 17:30 in Seattle
        ("+18085550123", "2026-03-03T01:30:00Z", "Pacific/Honolulu", None),  # 15:30 in Honolulu
        ("+447400123456", "2026-03-03T08:00:00Z", "Europe/Guernsey,Europe/Isle_of_Man,Europe/Jersey,Europe/London", None),  # 01:30 in London: 08:00 GMT
        ("+4915112345678", "2026-03-03T07:00:00Z", "Europe/Berlin", None),  # 02:30 in Berlin: 08:00 CET
    ],
)
async def test_without_a_time_zone_the_number_decides_its_zone_and_its_state(
        journeys_dir: Path, simulation, phone: str, expected: str, zone: str, region: str | None) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog, start=EVENING) as run:
        await run.customer(phone=phone, timezone=None)
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
        [message] = run.messages()
    assert text["status"] == "sent" and text["at"] == around(expected)
    assert (text["send_zone"], text["send_rule"], text.get("send_region")) == (zone, "number", region)
    assert (message.send_zone, message.send_region) == (zone, region)


async def test_a_region_across_zones_waits_for_its_rule_in_all_of_them(journeys_dir: Path, simulation) -> None:
    # +1 208 (Idaho) is Boise (Mountain) and Los Angeles (Pacific); the shop adds a rule for
    # Idaho: 09:00-20:00. 03:30 UTC is 20:30 in Boise (quiet for Idaho), 19:30 in LA. At
    # 09:00 in Boise (16:00 UTC) it is 08:00 in LA, still quiet for Idaho: 09:00 PST.
    settings = SETTINGS + 'regions:\n  US-ID: {quiet_hours: {start: "20:00", end: "09:00"}}\n'
    catalog = write_journeys(journeys_dir, {"promo": PROMO}, settings=settings)
    async with simulation(catalog, start=datetime(2026, 3, 3, 3, 30, tzinfo=UTC)) as run:
        await run.customer(phone="+12085550123", timezone=None)
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
    assert text["status"] == "sent" and text["at"] == around("2026-03-03T17:00:00Z")
    assert (text["send_zone"], text["send_region"]) == ("America/Boise,America/Los_Angeles", "US-ID")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Sunday 2026-03-08, the day DST begins: 15:00 UTC is 10:00 CDT. Texas: noon on Sundays.
        (datetime(2026, 3, 8, 15, 0, tzinfo=UTC), "2026-03-08T17:00:00Z"),
        # Monday 14:30 UTC is 08:30 CST: the shop allows it, Texas waits for 09:00.
        (datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "2026-03-02T15:00:00Z"),
    ],
)
async def test_a_state_with_a_stricter_window(journeys_dir: Path, simulation, start: datetime,
                                              expected: str) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog, start=start) as run:
        await run.customer(phone="+12145550123", timezone=None)  # Dallas
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
        [message] = run.messages()
    assert text["status"] == "sent" and text["at"] == around(expected)
    assert text["send_region"] == message.send_region == "US-TX"


async def test_the_profiles_state_applies_too(journeys_dir: Path, simulation) -> None:
    # A New Jersey number (no rule) whose profile says Florida: Florida's 20:00 applies.
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog, start=EVENING) as run:
        await run.customer(phone="+12015550123", timezone=None, attributes={"state": "FL"})
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
    assert text["status"] == "sent" and text["at"] == around("2026-03-03T13:00:00Z")
    assert text["send_region"] == "US-FL"


@pytest.mark.parametrize(
    ("phone", "fourth_at"),
    [
        ("+13055550123", "2026-03-03T15:00:00Z"),  # Florida: 3 per 24 hours; the 4th waits a day
        ("+12015550123", "2026-03-02T15:00:00Z"),  # New Jersey: only the shop's cap of 10
    ],
)
async def test_the_state_cap(journeys_dir: Path, simulation, phone: str, fourth_at: str) -> None:
    settings = SETTINGS.replace("frequency_caps: [{max: 1, per: 24h}, {max: 4, per: 7d}]",
                                "frequency_caps: [{max: 10, per: 24h}]")
    catalog = write_journeys(journeys_dir, {"burst": FOUR_TEXTS}, settings=settings)
    async with simulation(catalog) as run:  # Monday 15:00 UTC: 10:00 in New York
        await run.customer(phone=phone, timezone=None)
        assert await run.enter("burst")
        texts = sms(await run.timeline("burst"))
    assert [t["status"] for t in texts] == ["sent"] * 4
    assert [t["at"] for t in texts[:3]] == [around("2026-03-02T15:00:00Z")] * 3
    assert texts[3]["at"] == around(fourth_at)


# --- the combination, unit by unit ------------------------------------------------------

SHOP = QuietHours(start="21:00", end="08:00")
NEW_YORK = SendZones((ZoneInfo("America/New_York"),), "number")


def _window(region: str, **rule: object) -> Window:
    return Window.of(region, RegionRule.model_validate(rule))


def test_every_window_must_allow_the_moment_the_latest_end_wins() -> None:
    at = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)  # 20:30 EST
    florida = _window("US-FL", quiet_hours={"start": "20:00", "end": "08:00"})
    later = _window("US-XX", quiet_hours={"start": "20:00", "end": "10:00"})
    assert quiet_hours(at, NEW_YORK, SHOP).go
    assert quiet_hours(at, NEW_YORK, SHOP, [florida]).defer_until == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    assert quiet_hours(at, NEW_YORK, SHOP, [florida, later]).defer_until == datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_a_region_can_only_add_quiet_time_never_remove_the_shops() -> None:
    loose = _window("US-FL", quiet_hours={"start": "23:00", "end": "06:00"})  # looser than the shop
    at = datetime(2026, 3, 3, 2, 30, tzinfo=UTC)  # 21:30 EST: quiet for the shop
    assert quiet_hours(at, NEW_YORK, SHOP, [loose]).defer_until == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def test_quiet_days_run_into_the_next_days_hours() -> None:
    sunday = _window("US-MS", quiet_hours={"start": "20:00", "end": "09:00"}, quiet_days=["saturday", "sunday"])
    at = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)  # Saturday noon EST
    assert sunday.quiet_end(at, ZoneInfo("America/New_York")) == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_a_weekday_entry_replaces_that_days_hours_only() -> None:
    texas = SHIPPED["US-TX"].rule
    chicago = ZoneInfo("America/Chicago")
    window = Window.of("US-TX", texas)
    assert window.quiet_end(datetime(2026, 3, 1, 17, 0, tzinfo=UTC), chicago) == datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert window.quiet_end(datetime(2026, 3, 2, 17, 0, tzinfo=UTC), chicago) is None  # Monday 11:00
    assert window.quiet_end(datetime(2026, 3, 2, 14, 0, tzinfo=UTC), chicago) == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_when_the_shop_and_a_region_never_meet_the_region_decides() -> None:
    # A shop that texts only 21:00-23:00 to a Florida number (Florida: until 20:00): the
    # law before the shop's preference, not a text held forever.
    evening_only = QuietHours(start="23:00", end="21:00")
    florida = _window("US-FL", quiet_hours={"start": "20:00", "end": "08:00"})
    at = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 22:00 EST
    verdict = quiet_hours(at, NEW_YORK, evening_only, [florida])
    assert verdict.defer_until == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 EST


def test_caps_of_every_region_are_counted() -> None:
    settings = Settings.model_validate({"regions": {"US": {"frequency_caps": [{"max": 2, "per": "7d"}]}}})
    found = send_regions(Customer(id="c", phone="+13055550123"), settings)
    assert found.codes == ("US", "US-FL")
    assert sorted((cap.max, cap.per) for cap in found.caps) == [(2, timedelta(days=7)), (3, timedelta(hours=24))]
    assert found.name == "US,US-FL"


@pytest.mark.parametrize(
    ("phone", "attributes", "regions"),
    [
        ("+13055550123", {}, ("US", "US-FL")),
        ("+12125550123", {}, ("US", "US-NY")),  # the geocoder's "New York, NY"
        ("+12065550123", {}, ("US", "US-WA")),  # "Washington State"
        ("+12025550123", {}, ("US", "US-DC")),  # "Washington D.C."
        ("+4915112345678", {}, ("DE",)),
        ("+18762345678", {}, ("JM",)),
        ("+16475550123", {"state": "FL", "country": "CA"}, ("CA",)),  # a state of another country
        ("+4915112345678", {"state": "texas"}, ("DE", "US", "US-TX")),
        ("+4915112345678", {"country": "gb", "state": 12}, ("DE", "GB")),
    ],
)
def test_the_regions_of_a_customer(phone: str, attributes: dict, regions: tuple[str, ...]) -> None:
    assert customer_regions(Customer(id="c", phone=phone, attributes=attributes)) == regions


def test_the_number_of_every_shipped_state_is_placed_in_it() -> None:
    numbers = {"US-FL": "+13055550123", "US-OK": "+14055550123", "US-MD": "+13015550123",
               "US-WA": "+12065550123", "US-CT": "+12035550123", "US-TX": "+12145550123",
               "US-MS": "+16015550123"}
    assert set(numbers) == set(SHIPPED)
    for region, phone in numbers.items():
        assert regions_of_number(phone) == ("US", region)


def test_the_area_code_table_is_the_geocoders() -> None:
    # Every US area code the installed phonenumbers places in a state, over a spread of
    # exchanges; an upgrade that adds one must add it to the table too.
    table = {code: state for state, codes in AREA_CODES.items() for code in codes.split()}
    found = {}
    for area in range(200, 1000):
        for exchange in range(201, 1000, 53):
            e164 = f"+1{area}{exchange}0123"
            number = phonenumbers.parse(e164, None)
            us = phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "US"
            if us and (state := state_by_geocoder(e164)):
                found[str(area)] = state
                break
    assert found == table


def test_region_keys_are_checked_with_their_position(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        "regions:\n"
        "  US-FL: {quiet_hours: {start: '19:00', end: '09:00'}}\n"
        "  us-tx: {}\n"
        "  US-ZZ: {}\n"
        "  DE-BE: {}\n"
        "  US-OK: {quiet_days: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]}\n"
    )
    problems = [str(p) for p in load_configuration(tmp_path).problems]
    assert any(":3:" in p and "'us-tx' is not a region code" in p for p in problems)
    assert any(":4:" in p and "ZZ is not a US state" in p for p in problems)
    assert any(":5:" in p and "only US states" in p for p in problems)
    assert any(":6:" in p and "no text could ever go" in p for p in problems)
    assert len(problems) == 4


# --- the held-out set -------------------------------------------------------------------

FIXTURE = Path(__file__).parents[1] / "fixtures" / "regional_send_times.csv"
ROWS = list(csv.DictReader(FIXTURE.open()))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['phone']}-{r['at']}" for r in ROWS])
def test_held_out_send_times(row: dict[str, str]) -> None:
    settings = Settings(default_timezone="America/New_York")  # quiet hours 21:00-08:00 by default
    customer = Customer(id="c", phone=row["phone"], timezone=row["timezone"] or None,
                        attributes={"state": row["state"]} if row["state"] else {})
    at = _moment(row["at"])
    verdict = quiet_hours(at, send_zones(customer, settings.default_timezone), settings.quiet_hours,
                          send_regions(customer, settings).windows)
    if row["expected"] == "now":
        assert verdict.go, row["why (worked out by hand: shop window 21:00-08:00 plus the shipped state rules)"]
    else:
        assert verdict.defer_until == _moment(row["expected"])


def test_the_held_out_set_is_large_and_covers_what_it_must() -> None:
    phones = {row["phone"][:5] for row in ROWS}
    assert len(ROWS) >= 30
    assert {"+1808", "+1305", "+1405", "+1214", "+4474", "+4915", "+1907"} <= phones
