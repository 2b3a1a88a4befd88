"""Quiet hours follow the recipient's clock: the customer's time zone, else the zones of
the phone number (all of them when there are several), else the shop's default. The
timeline and the message row say which clock decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.sms.zones import SendZones, quiet_hours, send_zones
from language.config import QuietHours
from store.tables import Customer
from tests.runtime.support import around, sms, write_journeys

PROMO = """
id: promo
name: Promo
trigger: {event: signup}
steps:
  - id: text
    send_sms: {text: "Hi"}
"""
# The shop's default zone in these tests is America/New_York; quiet hours 21:00-08:00.
# 2026-03-02 02:00 UTC: 21:00 in New York, 16:00 in Honolulu, 03:00 in Stockholm.
EARLY = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
# 06:00 UTC: 21:00 in Anchorage (quiet just began), 20:00 in Adak (not quiet yet).
ALASKA_EVENING = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phone", "start", "expected", "zone"),
    [
        ("+12125550123", EARLY, "2026-03-02T13:00:00Z", "America/New_York"),  # 08:00 EST
        # 16:00 in Honolulu: not quiet there, so it goes at once (the shop's zone would defer it).
        ("+18085550123", EARLY, "2026-03-02T02:00:00Z", "Pacific/Honolulu"),
        ("+46701234567", EARLY, "2026-03-02T07:00:00Z", "Europe/Stockholm"),  # 08:00 CET
        # 907-555 is both Anchorage and Adak: quiet in Anchorage now, and when it ends
        # (17:00 UTC) it is 07:00 in Adak, still quiet: the text waits for 08:00 in Adak.
        ("+19075550123", ALASKA_EVENING, "2026-03-02T18:00:00Z", "America/Adak,America/Anchorage"),
        ("+19075550123", EARLY, "2026-03-02T02:00:00Z", "America/Adak,America/Anchorage"),  # 16:00/17:00
    ],
)
async def test_without_a_time_zone_the_number_decides(
        journeys_dir: Path, simulation, phone: str, start: datetime, expected: str, zone: str) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog, start=start) as run:
        await run.customer(phone=phone, timezone=None)
        assert await run.enter("promo")
        timeline = await run.timeline("promo")
        [message] = run.messages()
    [text] = sms(timeline)
    assert text["status"] == "sent" and text["at"] == around(expected)
    assert (text["send_zone"], text["send_rule"]) == (zone, "number")
    assert (message.send_zone, message.send_rule) == (zone, "number")


async def test_a_country_level_number_waits_for_a_moment_allowed_in_all_its_zones(
        journeys_dir: Path, simulation) -> None:
    # phonenumbers places +1 876 (Jamaica) only by its country code, +1: 42 zones from
    # Guam (UTC+10) to Samoa (UTC-11). The first moment outside 21:00-08:00 in all of
    # them is 22:00 UTC: 08:00 in Guam, 11:00 in Pago Pago, 17:00 in New York.
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog, start=EARLY) as run:
        await run.customer(phone="+18762345678", timezone=None)
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
        [message] = run.messages()
    assert text["status"] == "sent" and text["at"] == around("2026-03-02T22:00:00Z")
    zones = text["send_zone"].split(",")
    assert len(zones) > 40 and {"Pacific/Guam", "Pacific/Pago_Pago", "America/New_York"} <= set(zones)
    assert message.send_zone == text["send_zone"] and message.send_rule == "number"


async def test_the_customers_time_zone_wins_over_the_number(journeys_dir: Path, simulation) -> None:
    catalog = write_journeys(journeys_dir, {"promo": PROMO})
    async with simulation(catalog, start=EARLY) as run:
        await run.customer(phone="+18085550123", timezone="Europe/Stockholm")
        assert await run.enter("promo")
        [text] = sms(await run.timeline("promo"))
    assert text["status"] == "sent" and text["at"] == around("2026-03-02T07:00:00Z")
    assert (text["send_zone"], text["send_rule"]) == ("Europe/Stockholm", "customer_timezone")


async def test_transactional_texts_record_no_clock(journeys_dir: Path, simulation) -> None:
    receipt = PROMO.replace("id: promo", "id: receipt") + "sending: {purpose: transactional}\n"
    catalog = write_journeys(journeys_dir, {"receipt": receipt})
    async with simulation(catalog, start=EARLY) as run:
        await run.customer(phone="+12125550123")
        assert await run.enter("receipt")
        [text] = sms(await run.timeline("receipt"))
    assert text["status"] == "sent" and text["at"] == around("2026-03-02T02:00:00Z")
    assert "send_rule" not in text  # quiet hours did not apply


@pytest.mark.parametrize(
    ("timezone", "phone", "zones", "rule"),
    [
        ("Asia/Tokyo", "+12125550123", "Asia/Tokyo", "customer_timezone"),
        ("Not/AZone", "+12125550123", "America/New_York", "number"),  # unusable: as if absent
        (None, "+17015550100", "America/Denver,America/North_Dakota/Center", "number"),
        (None, None, "Europe/Paris", "default_timezone"),
    ],
)
def test_send_zones(timezone: str | None, phone: str | None, zones: str, rule: str) -> None:
    found = send_zones(Customer(id="c", timezone=timezone, phone=phone), "Europe/Paris")
    assert (found.name, found.rule) == (zones, rule)


def test_zones_with_no_common_free_moment_fall_back_to_the_first_zone() -> None:
    # Allowed 10:00-20:00 local: 10:00-20:00 UTC in London, 21:00-07:00 UTC in Auckland
    # (NZDT, +13): never both. The text is not held forever: the fallback zone decides.
    quiet = QuietHours(start="20:00", end="10:00")
    zones = SendZones((ZoneInfo("Europe/London"), ZoneInfo("Pacific/Auckland")), "number",
                      fallback=ZoneInfo("Europe/London"))
    at = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    verdict = quiet_hours(at, zones, quiet)
    assert verdict.defer_until == at + timedelta(hours=12)  # 10:00 in London
    assert quiet_hours(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), zones, quiet).go  # 12:00 in London


def test_the_fallback_is_the_shops_zone_when_the_number_may_be_there() -> None:
    customer = Customer(id="c", phone="+18762345678")  # all of +1
    assert send_zones(customer, "America/New_York").fallback == ZoneInfo("America/New_York")
    assert send_zones(customer, "Europe/Paris").fallback == ZoneInfo("America/Adak")  # the first
