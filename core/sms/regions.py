"""Which region rules a marketing text follows: those of every region the customer may be
in, the strictest rule that may apply. The regions are the number's (its country and,
for +1, the state of its area code) and the profile's (``attributes.country``, an ISO
code, and ``attributes.state``, a US state's USPS code or name). For each, the shipped
rule (core/sms/regional_defaults.py) and the shop's own (settings.yaml ``regions:``)
both apply: windows must all allow the moment, caps are all counted."""

from __future__ import annotations

from dataclasses import dataclass

from core.sms.regional_defaults import SHIPPED
from core.sms.windows import Window
from language.config import FrequencyCap, RegionRule, Settings
from messaging.regions import region_problem, regions_of_number, us_state
from store.tables import Customer


@dataclass(frozen=True)
class SendRegions:
    codes: tuple[str, ...]  # the regions whose rules applied, sorted
    windows: tuple[Window, ...]
    caps: tuple[FrequencyCap, ...]

    @property
    def name(self) -> str | None:
        return ",".join(self.codes) or None


def customer_regions(customer: Customer) -> tuple[str, ...]:
    """Every region the customer may be in, sorted: the number's and the profile's."""
    found = set(regions_of_number(customer.phone)) if customer.phone else set()
    attributes = customer.attributes or {}
    country = attributes.get("country")
    country = country.strip().upper() if isinstance(country, str) else None
    if country and not region_problem(country):
        found.add(country)
    state = us_state(attributes.get("state"))
    if state and country in (None, "", "US"):  # a state of another country has no rule here
        found.update(("US", f"US-{state}"))
    return tuple(sorted(found))


def rules_for(region: str, settings: Settings) -> list[RegionRule]:
    shipped = SHIPPED.get(region)
    own = settings.regions.get(region)
    return [rule for rule in (shipped.rule if shipped else None, own) if rule is not None]


def send_regions(customer: Customer, settings: Settings) -> SendRegions:
    codes, windows, caps = [], [], []
    for region in customer_regions(customer):
        found = rules_for(region, settings)
        if found:
            codes.append(region)
        for rule in found:
            windows.append(Window.of(region, rule))
            caps.extend(rule.frequency_caps)
    return SendRegions(tuple(codes), tuple(windows), tuple(caps))
