"""The dashboard in a real browser: the seeded history of tests/reports (a held-out
promo with clicks, replies, a STOP, coupons and purchases, made through the real event
path on the time-skipping server, both databases), the real HTTP service on a port, the
system Chromium signing in through the form. Every number checked is the one that
happened (the same figures tests/reports checks in the report models); screenshots of
each page go to tests/artifacts/dashboard/<test>/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from api.app import create_app
from api.dashboard.session import COOKIE, safe_next
from api.services import Services
from tests.dashboard.conftest import serving
from tests.reports.test_reports import _arms, _catalog, _history, _reference_lift

TOKEN = "dashboard-token"


def _pp(share: float) -> str:
    return f"{share * 100:+.1f} pp"


async def _text(page: Page, selector: str) -> str:
    return (await page.locator(selector).text_content() or "").strip()  # SVG text has no inner_text


async def test_the_dashboard_shows_what_happened(tmp_path: Path, simulation, db, browser: Browser,
                                                 artifacts: Path) -> None:
    catalog = _catalog(tmp_path / "journeys", "20% off")
    text, holdout = _arms(catalog)
    version = catalog.journey("promo").version
    async with simulation(catalog) as run:
        await _history(run, text, holdout)
        app = create_app(Services.build(catalog, db, run.sim.router, api_token=TOKEN))
        async with serving(app) as base:
            context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 900},
                                                java_script_enabled=False)  # the pages need none
            page = await context.new_page()
            try:
                await _sign_in(page, artifacts)
                cookie = next(c for c in await context.cookies() if c["name"] == COOKIE)
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
                await _journeys(page, artifacts)
                await _journey(page, artifacts, version)
                await _program(page, artifacts)
                await page.click("text=Sign out")
                await expect(page).to_have_url(f"{base}/dashboard/login")
                await page.goto("/dashboard")
                await expect(page).to_have_url(f"{base}/dashboard/login?next=/dashboard")
            finally:
                await context.close()
            await _bearer_and_redirects(base)


async def _sign_in(page: Page, artifacts: Path) -> None:
    await page.goto("/dashboard/program?until=2026-03-31")  # not signed in: to the form, and back after
    assert page.url.endswith("/dashboard/login?next=/dashboard/program%3Funtil%3D2026-03-31")
    await page.fill("[data-testid=token]", "not-the-token")
    async with page.expect_response(lambda r: r.request.method == "POST") as refused:
        await page.click("[data-testid=sign-in]")
    assert (await refused.value).status == 403
    assert await _text(page, "[data-testid=error]") == "This token is not valid."
    await page.screenshot(path=artifacts / "login-refused.png", full_page=True)
    await page.fill("[data-testid=token]", TOKEN)
    await page.click("[data-testid=sign-in]")
    assert page.url.endswith("/dashboard/program?until=2026-03-31")


async def _journeys(page: Page, artifacts: Path) -> None:
    await page.goto("/dashboard")
    row = "[data-testid=journey-promo]"
    shown = {name: await _text(page, f"{row} [data-testid={name}]")
             for name in ("entries", "active", "conversions", "conversion-rate", "revenue", "sent", "ctr")}
    # 9 entered, 3 converted (t1 80, t2 30, h2 50), 5 texts, 2 clickers of 4 delivered.
    assert shown == {"entries": "9", "active": "0", "conversions": "3", "conversion-rate": "33.3%",
                     "revenue": "160.00 USD", "sent": "5", "ctr": "50.0%"}
    await page.screenshot(path=artifacts / "journeys.png", full_page=True)


async def _journey(page: Page, artifacts: Path, version: str) -> None:
    await page.click("[data-testid=journey-promo] a")
    section = f"[data-testid=version-{version}]"
    await expect(page.locator(section)).to_have_count(1)
    graph = f"{section} [data-testid=graph]"
    keys = ["steps.0", "offer", "steps.1", "steps.2", "steps.2.then.0"]
    assert await page.locator(f"{graph} g.node").count() == len(keys)
    assert await page.locator(f"{graph} path.edge").count() == len(keys) - 1
    counts = {key: await _text(page, f'{graph} [data-testid="node-{key}"] [data-testid=counts]') for key in keys}
    assert counts["steps.0"] == "reached 9"  # the split: every run
    assert counts["offer"] == "reached 5 · sent 5 · delivered 4 · clicked 2 · replies 1 · opt-outs 1"
    assert counts["steps.1"] == "reached \u2013"  # a wait leaves no row to count
    funnel = {stage: await _text(page, f"{section} [data-testid=funnel-{stage}]")
              for stage in ("entered", "texts-sent", "delivered", "clicked", "converted")}
    assert funnel == {"entered": "9", "texts-sent": "5", "delivered": "4", "clicked": "2", "converted": "3"}
    assert await page.locator(f"{section} [data-testid=funnel] g.bar").count() == 5

    split = f"{section} [data-testid=split-offer]"
    arm: dict[str, dict[str, str]] = {}
    for name in ("text", "holdout"):
        arm[name] = {field: await _text(page, f"{split} [data-testid=variant-{name}] [data-testid={field}]")
                     for field in ("entered", "converted", "rate")}
    assert arm == {"text": {"entered": "5", "converted": "2", "rate": "40.0%"},
                   "holdout": {"entered": "4", "converted": "1", "rate": "25.0%"}}
    reference: dict[str, Any] = _reference_lift(2, 5, 1, 4)
    interval = reference["absolute_interval"]
    assert await _text(page, f"{split} [data-testid=variant-text] [data-testid=lift]") == _pp(reference["absolute"])
    assert await _text(page, f"{split} [data-testid=variant-text] [data-testid=interval]") == (
        f"{_pp(interval['low'])} to {_pp(interval['high'])}")
    needed = reference["required_per_arm"]
    assert await _text(page, f"{split} [data-testid=variant-text] [data-testid=needed]") == f"{needed:,}"
    assert needed > 5  # so: too small to tell
    warning = await _text(page, f"{section} [data-testid=too-small-text]")
    assert f"each arm needs {needed:,} customers; text has 5 and the holdout 4" in warning
    bar = page.locator(f"{section} [data-testid=lifts-offer] [data-testid=errorbar-text]")
    assert await bar.locator("line.whisker").count() == 3 and await bar.locator("circle.point").count() == 1
    assert "uncertain" in (await bar.get_attribute("class") or "")
    await page.screenshot(path=artifacts / "journey.png", full_page=True)


async def _program(page: Page, artifacts: Path) -> None:
    await page.goto("/dashboard/program?until=2026-03-31")
    month = "[data-testid=subscribers] [data-testid=month-2026-03]"
    assert [await _text(page, f"{month} [data-testid={f}]") for f in ("opt-ins", "opt-outs", "subscribers")] == [
        "9", "2", "7"]  # the nine opted in; t3 and h3 sent STOP
    assert await page.locator("[data-testid=growth] g.column").count() == 1
    # Cohorts 2025-01 (h4), 2026-01 (t1, h2), 2026-03 (t2, h3), each up to March 2026.
    months = {"2025-01": 15, "2026-01": 3, "2026-03": 1}
    heat = page.locator("[data-testid=heat-map]")
    assert await heat.locator("g.cell").count() == sum(months.values())
    for cohort, n in months.items():
        assert await heat.locator(f'[data-testid^="cell-{cohort}-"]').count() == n
    assert await _text(page, "[data-testid=heat-map] [data-testid=cell-2026-01-2] text") == "100"
    assert await _text(page, "[data-testid=heat-map] [data-testid=cell-2026-01-1] text") == "0"
    assert await _text(page, "[data-testid=cohorts] [data-testid=cohort-2026-01] [data-testid=customers]") == "2"
    assert await _text(page, "[data-testid=orders]") == "7"
    assert await _text(page, "[data-testid=purchase-revenue]") == "275.00 USD"
    assert await _text(page, "[data-testid=clv-subscribers] [data-testid=clv]") == "50.00 USD"
    assert await _text(page, "[data-testid=clv-others] [data-testid=clv]") == "40.00 USD"
    assert await page.locator("[data-testid=clv] g.bar").count() == 2
    assert await _text(page, "[data-testid=points-issued]") == "445"  # 275 bought, 2 x 10 punches, 100 + 50 referral
    assert await _text(page, "[data-testid=points-expired]") == "35"
    assert await _text(page, "[data-testid=referrals]") == "1"
    assert await _text(page, "[data-testid=coupon-WELCOME10] [data-testid=issued]") == "5"
    assert await _text(page, "[data-testid=coupon-WELCOME10] [data-testid=redeemed]") == "1"
    await page.screenshot(path=artifacts / "program.png", full_page=True)
    await page.goto("/dashboard/program?since=March")
    assert "since" in await _text(page, "[data-testid=error]")


async def _bearer_and_redirects(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, follow_redirects=False) as http:
        assert (await http.get("/dashboard/journeys/promo")).headers["location"] == (
            "/dashboard/login?next=/dashboard/journeys/promo")
        signed = await http.get("/dashboard/journeys/promo", headers={"Authorization": f"Bearer {TOKEN}"})
        assert signed.status_code == 200 and "script" not in signed.headers["content-security-policy"]
        assert TOKEN not in signed.text
        wrong = await http.get("/dashboard", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        for target in ("https://evil.example/", "//evil.example", "/dashboard/../reports/program", "/\\evil"):
            answer = await http.post("/dashboard/login", data={"token": TOKEN, "next": target})
            assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard"), target
        missing = await http.get("/dashboard/journeys/nope", headers={"Authorization": f"Bearer {TOKEN}"})
        assert missing.status_code == 404 and "no journey" in missing.text
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, cookies={COOKIE: TOKEN}) as forged:
        assert (await forged.get("/dashboard")).status_code == 303  # the token itself is no session


def test_a_login_sends_the_browser_on_only_to_a_dashboard_page() -> None:
    assert safe_next("/dashboard/journeys/promo?version=abc") == "/dashboard/journeys/promo?version=abc"
    assert safe_next("/dashboard/program?since=2026-01-01&until=2026-03-31") == (
        "/dashboard/program?since=2026-01-01&until=2026-03-31")
    for target in (None, "", "/reports/program", "https://evil.example/dashboard", "//evil.example/dashboard",
                   "/dashboard//evil.example", "/dashboard/../customers", "/dashboardx", "/dashboard\r\nSet-Cookie:"):
        assert safe_next(target) == "/dashboard", target
