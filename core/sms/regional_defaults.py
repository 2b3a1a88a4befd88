"""The state rules the engine ships: US states whose law on marketing calls and texts is
stricter than the federal TCPA window (08:00-21:00 in the recipient's local time, 47 CFR
64.1200(c)(1)). They apply whatever settings.yaml says: a shop's own ``regions:`` rules
are added to them and the stricter wins, so no shop can loosen them.

Each rule cites its statute; docs/compliance.md has the table and what was left out and
why. This is not legal advice: a shop must check its obligations with its counsel.
Holidays (some states bar sales calls on them) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

from language.config import RegionRule


@dataclass(frozen=True)
class Shipped:
    rule: RegionRule
    source: str  # the statute, as the docs table cites it


def _rule(**spec: object) -> RegionRule:
    return RegionRule.model_validate(spec)


_8_TO_8 = {"start": "20:00", "end": "08:00"}
_THREE_A_DAY = [{"max": 3, "per": "24h"}]  # on the same subject; all marketing texts count here

SHIPPED: dict[str, Shipped] = {
    # Florida Telephone Solicitation Act and Telemarketing Act, as amended by SB 1120 (2021):
    # sales calls and texts only 08:00-20:00 local, at most 3 per 24 hours on the same subject.
    "US-FL": Shipped(_rule(quiet_hours=_8_TO_8, frequency_caps=_THREE_A_DAY),
                     "Fla. Stat. 501.616(6)(a)-(b); texts are sales calls under 501.059(1)"),
    # Oklahoma Telephone Solicitation Act of 2022 (HB 3168), in force 2022-11-01.
    "US-OK": Shipped(_rule(quiet_hours=_8_TO_8, frequency_caps=_THREE_A_DAY),
                     "Okla. Stat. tit. 15, 775C.1 et seq. (775C.4)"),
    # Maryland Stop the Spam Calls Act of 2023 (SB 90), in force 2024-01-01.
    "US-MD": Shipped(_rule(quiet_hours=_8_TO_8, frequency_caps=_THREE_A_DAY),
                     "Md. Code, Com. Law 14-4501 et seq."),
    # Washington: commercial telephone solicitors may not call before 08:00 or after 20:00.
    "US-WA": Shipped(_rule(quiet_hours=_8_TO_8), "RCW 19.158.040(2); RCW 80.36.390"),
    # Connecticut, as amended by Public Act 23-98 (2023): 09:00-20:00, text messages included.
    "US-CT": Shipped(_rule(quiet_hours={"start": "20:00", "end": "09:00"}), "Conn. Gen. Stat. 42-288a"),
    # Texas: 09:00-21:00 Monday to Saturday, 12:00-21:00 on Sunday.
    "US-TX": Shipped(_rule(quiet_hours={"start": "21:00", "end": "09:00"},
                           weekday_quiet_hours={"sunday": {"start": "21:00", "end": "12:00"}}),
                     "Tex. Bus. & Com. Code 301.051"),
    # Mississippi Telephone Solicitation Act: 08:00-20:00 Central Standard Time, never on a
    # Sunday. Read on the local clock as 09:00-20:00: inside the statute's hours all year
    # (08:00 CDT in summer is 07:00 CST, too early; 09:00 CDT is 08:00 CST).
    "US-MS": Shipped(_rule(quiet_hours={"start": "20:00", "end": "09:00"}, quiet_days=["sunday"]),
                     "Miss. Code Ann. 77-3-723(1)"),
}
