"""A held-out run of a journey with a split, clicks, replies, opt-outs, coupons and
purchases, made through the real event path and the real send activity on the
time-skipping server (both databases), then reported: every figure of the journey
report and of the program report is the number that actually happened. The split's
lift is checked against a reference computed here by hand (Wilson/Newcombe with
statistics.NormalDist, Fisher by enumeration), not by core.reports.stats."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from api.app import create_app
from api.services import Services
from core.customers import consent
from core.loyalty.ledger import ensure_referral_code
from core.reports.journey import journey_report
from core.reports.program import program_report
from core.sms.links import record_click
from core.sms.receipts import apply_receipt
from language.validate import load_catalog
from store.db import session_scope
from store.tables import Coupon, Customer, Event, Link, Message
from tests.runtime.support import MONDAY_3PM, SETTINGS, write_journeys
from workflows.steps.branching import assign_variant

PROMO = """
id: promo
name: Promo
trigger: {event: promo}
exit_on: [{event: refund}]
goal: {event: purchase, within: 7d, value: "event.properties.amount"}
steps:
  - split:
      name: offer
      variants:
        - name: text
          weight: 50
          steps:
            - id: offer
              send_sms: {text: "TEXT_V: {{ coupon('WELCOME10') }} {{ link('https://shop.example/new') }}"}
        - {name: holdout, weight: 50, steps: []}
  - wait: 2d
  - if: "not clicked('offer')"
    then: [{exit: no_click}]
"""
LOYALTY = """
points: {per_currency_unit: 1, expire_after: 365d}
tiers:
  - {name: silver, min_points: 0}
  - {name: gold, min_points: 500}
punch_card: {every: 2, reward_points: 10}
referral: {referrer_points: 100, referee_points: 50}
coupons:
  WELCOME10: {discount: "10%", expires_in: 30d}
"""
PRICE = 0.0079
REPORT_SETTINGS = SETTINGS + "costs: {sms_per_segment: 0.0079, currency: USD}\nreports: {attribution_window: 48h}\n"
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
TOKEN = "report-token"


def _catalog(root: Path, text: str) -> Any:
    write_journeys(root, {"promo": PROMO.replace("TEXT_V", text)}, settings=REPORT_SETTINGS)
    (root / "loyalty.yaml").write_text(LOYALTY)
    return load_catalog(root)


def _arms(catalog: Any) -> tuple[list[str], list[str]]:
    """Five customers who fall in `text`, four in `holdout` (assignment is a stable hash)."""
    variants = catalog.journey("promo").journey.steps[0].split.variants
    text: list[str] = []
    holdout: list[str] = []
    for i in range(100):
        cid = f"c{i:02d}"
        arm = text if assign_variant("promo", "offer", cid, variants).name == "text" else holdout
        if len(arm) < (5 if arm is text else 4):
            arm.append(cid)
    return text, holdout


def _phone(n: int) -> str:
    return f"+120155501{n:02d}"


# --- an independent reference for the split statistics ------------------------------------

def _wilson(x: int, n: int) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.975)
    p = x / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def _fisher_two_sided(a: int, n1: int, c: int, n2: int) -> float:
    total = a + c
    def prob(k: int) -> float:
        return math.comb(n1, k) * math.comb(n2, total - k) / math.comb(n1 + n2, total)
    observed = prob(a)
    return sum(prob(k) for k in range(max(0, total - n2), min(n1, total) + 1) if prob(k) <= observed * (1 + 1e-7))


def _reference_lift(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = _wilson(x1, n1), _wilson(x2, n2)
    d = p1 - p2
    mean = (p1 + p2) / 2
    za, zb = NormalDist().inv_cdf(0.975), NormalDist().inv_cdf(0.8)
    root = za * math.sqrt(2 * mean * (1 - mean)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    ratio = p1 / p2
    return {"absolute": d,
            "absolute_interval": {"low": d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
                                  "high": d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)},
            "relative": ratio - 1,
            "relative_interval": {"low": ratio * math.exp(-za * se) - 1, "high": ratio * math.exp(za * se) - 1},
            "p_value": _fisher_two_sided(x1, n1, x2, n2), "test": "fisher",
            "required_per_arm": math.ceil(root**2 / d**2)}


def _approx(value: Any) -> Any:
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    return value


# --- the history ---------------------------------------------------------------------------

async def _history(run: Any, text: list[str], holdout: list[str]) -> dict[str, Any]:
    sim, db = run.sim, run.sim.db
    t1, t2, t3, t4, t5 = text
    _, h2, h3, h4 = holdout
    orders = {t1: [{"at": "-40d", "amount": 20}], h2: [{"at": "-40d", "amount": 20}],
              h4: [{"at": "-400d", "amount": 35}]}
    for n, cid in enumerate(text + holdout):
        await run.customer(id=cid, phone=_phone(n), orders=orders.get(cid, []))
    for cid in text + holdout:
        assert await run.enter("promo", customer=cid)
    referral_code = ensure_referral_code(db, t1)

    def offer_messages() -> dict[str, Message]:
        with session_scope(db) as session:
            return {m.customer_id: m for m in session.exec(select(Message).where(Message.step_id == "offer"))}

    import asyncio
    for _ in range(200):
        if len([m for m in offer_messages().values() if m.provider_message_id]) == 5:
            break
        await asyncio.sleep(0.05)
    messages = offer_messages()
    assert sorted(messages) == sorted(text)
    for cid in (t1, t2, t3, t4):
        await apply_receipt(sim.router, messages[cid].provider_message_id, "delivered", None, MONDAY_3PM)
    await apply_receipt(sim.router, messages[t5].provider_message_id, "undelivered", "30003", MONDAY_3PM)
    with session_scope(db) as session:
        link = session.exec(select(Link).where(Link.customer_id == t1)).one()
        coupon = session.exec(select(Coupon).where(Coupon.customer_id == t1)).one()
    await run.at("click:offer@+1h", customer=t1)
    await record_click(sim.router, link.code, at=MONDAY_3PM + timedelta(hours=1, minutes=5), method="HEAD")  # a bot
    await run.at("click:offer@+1h30m", customer=t1)  # a second click: counted, not a new clicker
    await run.at("click:offer@+1h40m", customer=t2)
    await run.at("reply:offer@+2h love it", customer=t1)
    await run.at("stop@+3h", customer=t3)
    await run.at("stop@+4h", customer=h3)  # a holdout: no text to attribute it to
    await run.at(f'purchase@+1d {{"amount": 80, "coupon_code": "{coupon.code}"}}', customer=t1)
    await run.at("refund@+1d1h", customer=t4)
    await run.at('purchase@+2d {"amount": 50}', customer=h2)
    await run.at(f'purchase@+3d {{"amount": 30, "referral_code": "{referral_code}"}}', customer=t2)
    await run.at("reply:offer@+3d1h too late", customer=t2)  # beyond the 48h window
    await run.at('purchase@+10d {"amount": 40}', customer=h3)  # beyond the goal's 7 days
    outcomes = {cid: (await run.timeline("promo", customer=cid))["outcome"] for cid in text + holdout}
    assert outcomes == {t1: "completed", t2: "completed", t3: "no_click", t4: "exited:refund", t5: "no_click",
                        **{h: "no_click" for h in holdout}}
    segments = sum(m.segments or 0 for m in offer_messages().values())
    return {"segments": segments}


def _expected_journey_version(segments: int) -> dict[str, Any]:
    cost = round(segments * PRICE, 6)
    return {
        "entries": 9, "active": 0,
        "outcomes": {"completed": 2, "exited:refund": 1, "no_click": 6},
        "messages_sent": 5, "segments": segments, "cost": cost,
        "goal": {"event": "purchase", "conversions": 3, "conversion_rate": 3 / 9, "revenue": 160.0,
                 "revenue_per_message": 160 / 5},
        "offer": {"sent": 5, "delivered": 4, "failed": 1, "unconfirmed": 0, "deferred": 0, "skipped": {},
                  "segments": segments, "cost": cost, "unique_clicks": 2, "total_clicks": 3,
                  "click_through_rate": 2 / 4, "replies": 1, "opt_outs": 1, "coupons_issued": 5,
                  "coupons_redeemed": 1},
    }


async def test_a_held_out_run_is_reported_with_the_numbers_that_happened(tmp_path: Path, simulation, db) -> None:
    catalog = _catalog(tmp_path / "v1", "20% off")
    text, holdout = _arms(catalog)
    async with simulation(catalog) as run:
        seeded = await _history(run, text, holdout)
        v1 = catalog.journey("promo").version
        services = Services.build(catalog, db, run.sim.router, api_token=TOKEN)
        app = create_app(services)
        async with (app.router.lifespan_context(app),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http):
                api_journey = (await http.get("/reports/journeys/promo",
                                              headers={"Authorization": f"Bearer {TOKEN}"})).json()
                api_program = (await http.get("/reports/program", params={"until": "2026-03-31"},
                                              headers={"Authorization": f"Bearer {TOKEN}"})).json()
                bad = await http.get("/reports/program", params={"since": "March"},
                                     headers={"Authorization": f"Bearer {TOKEN}"})
                missing = await http.get("/reports/journeys/nope", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 422 and "since" in bad.text
    assert missing.status_code == 404

    # An edit: a new version, two new customers in `text`, one of them never opted in.
    # Its runs never blur the first version's numbers.
    catalog2 = _catalog(tmp_path / "v2", "25% off")
    v2 = catalog2.journey("promo").version
    assert v2 != v1
    variants = catalog2.journey("promo").journey.steps[0].split.variants
    u1, u2 = [cid for cid in (f"u{i}" for i in range(100))
              if assign_variant("promo", "offer", cid, variants).name == "text"][:2]
    async with simulation(catalog2, start=MONDAY_3PM + timedelta(days=14)) as run:
        await run.customer(id=u1, phone=_phone(50))
        await run.customer(id=u2, phone=_phone(51), sms_consent="none")
        for cid in (u1, u2):
            assert await run.enter("promo", customer=cid)
        for cid in (u1, u2):
            await run.timeline("promo", customer=cid)

    report = journey_report(db, "promo", settings=catalog2.settings, current=catalog2.journey("promo").journey,
                            current_version=v2)
    assert [v.version for v in report.versions] == [v2, v1]
    assert report.currency == "USD" and report.attribution_window_seconds == 48 * 3600
    first = report.versions[1].model_dump(mode="json")
    expected = _expected_journey_version(seeded["segments"])
    assert seeded["segments"] == 5 * 1  # one GSM-7 segment each
    for name in ("entries", "active", "outcomes", "messages_sent", "segments", "cost", "goal"):
        assert first[name] == _approx(expected[name]), name
    steps = {s["key"]: s for s in first["steps"]}
    assert list(steps) == ["steps.0", "offer", "steps.1", "steps.2", "steps.2.then.0"]  # journey order
    assert steps["steps.0"]["reached"] == 9 and steps["steps.0"]["kind"] == "split"
    assert steps["offer"]["reached"] == 5 and steps["offer"]["depth"] == 1
    assert steps["offer"]["branch"] == "variant.text"
    assert steps["offer"]["send"] == _approx(expected["offer"])
    assert steps["steps.1"]["reached"] is None and steps["steps.1"]["send"] is None  # a wait: not recorded

    (split,) = first["splits"]
    assert split["name"] == "offer" and split["holdout"] == "holdout" and split["step"] == "steps.0"
    arms = {v["name"]: v for v in split["variants"]}
    assert arms["holdout"] == _approx({"name": "holdout", "holdout": True, "entered": 4, "converted": 1,
                                       "conversion_rate": 0.25, "revenue": 50.0, "revenue_per_customer": 12.5,
                                       "lift": None})
    assert {k: v for k, v in arms["text"].items() if k != "lift"} == _approx({
        "name": "text", "holdout": False, "entered": 5, "converted": 2, "conversion_rate": 0.4, "revenue": 110.0,
        "revenue_per_customer": 22.0})
    assert arms["text"]["lift"] == _approx(_reference_lift(2, 5, 1, 4))

    second = report.versions[0]
    assert (second.current, second.entries, second.messages_sent, second.outcomes) == (True, 2, 1, {"no_click": 2})
    offer = next(s for s in second.steps if s.key == "offer")
    assert offer.reached == 2 and offer.send is not None
    assert (offer.send.sent, offer.send.skipped, offer.send.coupons_issued) == (1, {"no_consent": 1}, 1)
    assert second.goal is not None and second.goal.conversions == 0

    # Filters: by version, and by when runs entered.
    only_v1 = journey_report(db, "promo", settings=catalog2.settings, version=v1)
    assert [v.version for v in only_v1.versions] == [v1] and only_v1.versions[0].entries == 9
    later = journey_report(db, "promo", settings=catalog2.settings, since=MONDAY_3PM + timedelta(days=1))
    assert {v.version: v.entries for v in later.versions} == {v1: 0, v2: 2}
    # The texts follow their runs' entry, not the version alone.
    assert {v.version: v.messages_sent for v in later.versions} == {v1: 0, v2: 1}
    later_offer = next(s for v in later.versions if v.version == v2 for s in v.steps if s.key == "offer")
    assert later_offer.send == offer.send

    # The API returned the same report (before the edit: one version).
    assert api_journey["versions"][0]["version"] == v1
    assert api_journey["versions"][0]["steps"] == first["steps"]
    assert api_journey["versions"][0]["splits"] == first["splits"]

    # --- the program report (t1..t5 text, h1..h4 holdout, as in _history) ---------------
    program = program_report(db, until=UNTIL).model_dump(mode="json")
    # Opted in at the start: the nine, and u1 (u2 never did). Out: t3 and h3 (STOP).
    assert program["subscribers"] == [{"month": "2026-03", "opt_ins": 10, "opt_outs": 2, "net": 8,
                                       "subscribers": 8}]
    jan = MONDAY_3PM - timedelta(days=40)
    assert (jan.year, jan.month) == (2026, 1)
    assert program["cohorts"] == [
        # h4: first bought 400 days before (2025-01), never since: churned, retained in month 0 only.
        {"month": "2025-01", "customers": 1, "retention": [1.0] + [0.0] * 14, "churned": 1.0},
        # t1 and h2: January, then both bought again in March (month 2).
        {"month": "2026-01", "customers": 2, "retention": [1.0, 0.0, 1.0], "churned": 0.0},
        # t2 and h3 first bought in March.
        {"month": "2026-03", "customers": 2, "retention": [1.0], "churned": 0.0},
    ]
    assert program["purchases"] == _approx({"orders": 7, "revenue": 275.0, "buyers": 5, "repeat_buyers": 2,
                                            "repeat_purchase_rate": 0.4, "average_order_value": 275 / 7})
    # Subscribers now: everyone but t3 and h3 (STOP). Their 12 months: t1 100, h2 70, t2 30, h4 0.
    assert program["clv_subscribers"] == _approx({"customers": 4, "revenue": 200.0, "clv": 50.0})
    assert program["clv_others"] == _approx({"customers": 1, "revenue": 40.0, "clv": 40.0})
    loyalty = program["loyalty"]
    # Purchases 275 points, punch cards 2 x 10 (t1's and h2's second orders), the referral 100 + 50.
    assert loyalty["points_issued"] == 275 + 20 + 150
    assert loyalty["points_expired"] == 35  # h4's points from 400 days ago
    assert (loyalty["punch_card_rewards"], loyalty["punch_card_points"], loyalty["referrals_converted"]) == (2, 20, 1)
    assert loyalty["coupons"] == [{"series": "WELCOME10", "issued": 6, "redeemed": 1, "redemption_rate": 1 / 6}]
    with session_scope(db) as session:  # tiers: the reference is the rows themselves
        tiers: dict[str, int] = {}
        for customer in session.exec(select(Customer)):
            tiers[customer.tier or "none"] = tiers.get(customer.tier or "none", 0) + 1
        moves: dict[tuple[Any, Any], set[str]] = {}
        for event in session.exec(select(Event).where(Event.type == "tier_changed",
                                                      col(Event.occurred_at) < UNTIL)):
            moves.setdefault((event.properties.get("from"), event.properties.get("to")), set()).add(event.customer_id)
    assert loyalty["tiers"] == dict(sorted(tiers.items()))
    assert {(m["from_tier"], m["to_tier"]): m["customers"] for m in loyalty["tier_moves"]} == {
        k: len(v) for k, v in moves.items()}
    assert moves, "purchases moved customers into a tier"
    # April, through the API's consent path: an opt-out, an opt-in, and a second YES
    # (more evidence, no new subscriber). A period of its own: nothing else happened in it.
    for status, source, day in (("opted_out", "api", 10), ("opted_in", "api", 20), ("opted_in", "checkout", 21)):
        consent.record(db, u1, status, source=source, at=datetime(2026, 4, day, 12, tzinfo=UTC))
    april = program_report(db, since=UNTIL, until=datetime(2026, 5, 1, tzinfo=UTC)).model_dump(mode="json")
    assert april["subscribers"] == [{"month": "2026-04", "opt_ins": 1, "opt_outs": 1, "net": 0, "subscribers": 8}]
    assert april["cohorts"] == [] and april["loyalty"]["coupons"] == []
    assert april["purchases"] == {"orders": 0, "revenue": 0.0, "buyers": 0, "repeat_buyers": 0,
                                  "repeat_purchase_rate": None, "average_order_value": None}
    assert (april["loyalty"]["points_issued"], april["loyalty"]["points_expired"]) == (0, 0)
    # The API's program report, to the end of 31 March, is the same.
    assert api_program["purchases"] == program["purchases"]
    assert api_program["cohorts"] == program["cohorts"]

    # The command line: the same JSON, and CSV rows named by version and step.
    from cli.main import app as cli_app

    env = {"JOURNEYS_DATABASE_URL": db.url.render_as_string(hide_password=False),
           "JOURNEYS_DIR": str(tmp_path / "v2")}
    result = CliRunner().invoke(cli_app, ["report", "promo", "--json", "--version", v1], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["versions"][0]["steps"] == first["steps"]
    result = CliRunner().invoke(cli_app, ["report", "promo", "--csv"], env=env)
    assert result.exit_code == 0, result.output
    assert f"versions[{v1}].steps[offer].send.total_clicks,3" in result.output.splitlines()
    result = CliRunner().invoke(cli_app, ["report", "promo"], env=env)
    assert result.exit_code == 0 and "offer" in result.output and "holdout" in result.output, result.output
    result = CliRunner().invoke(cli_app, ["report", "--program", "--until", "2026-03-31"], env=env)
    assert result.exit_code == 0 and "WELCOME10" in result.output, result.output
    result = CliRunner().invoke(cli_app, ["report", "--program", "promo"], env=env)
    assert result.exit_code == 2
