"""`journeys rewards list|redeem` and `journeys coupons import`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from sqlmodel import select
from typer.testing import CliRunner

from cli.main import app as cli_app
from core.clock import utcnow
from store.db import session_scope
from store.tables import PooledCoupon
from tests.loyalty.support import balance, loyalty_catalog, purchase, router_for
from tests.loyalty.test_rewards import REWARDS

runner = CliRunner()


@pytest.fixture
def cli_env(journeys_dir: Path, db, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    loyalty_catalog(journeys_dir, loyalty=REWARDS)
    monkeypatch.setenv("JOURNEYS_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("JOURNEYS_DIR", str(journeys_dir))
    monkeypatch.setenv("COLUMNS", "200")
    return journeys_dir


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, cli_app, list(args))


async def test_rewards_list_shows_the_catalogue(cli_env: Path) -> None:
    result = await _cli("rewards", "list")
    assert result.exit_code == 0, result.output
    assert "rewards (SMS: REDEEM <reward>)" in result.output
    assert "free_shipping" in result.output and "500" in result.output and "free shipping" in result.output
    assert "PLATFORM (pool)" in result.output


async def test_rewards_redeem_prints_the_code_and_a_repeated_key_spends_nothing(cli_env: Path, db) -> None:
    catalog = loyalty_catalog(cli_env, loyalty=REWARDS)
    await purchase(router_for(catalog, db), "c1", 600, utcnow() - timedelta(hours=1), event_id="o1")
    first = await _cli("rewards", "redeem", "c1", "free_shipping", "--key", "K1", "--json")
    assert first.exit_code == 0, first.output
    done = json.loads(first.output)
    assert (done["points"], done["balance"], done["repeat"], done["key"]) == (500, 100, False, "K1")
    again = await _cli("rewards", "redeem", "c1", "free_shipping", "--key", "K1")
    assert again.exit_code == 0 and f"coupon {done['code']}" in again.output
    assert "already redeemed with this key: nothing more spent, balance 100" in again.output
    short = await _cli("rewards", "redeem", "c1", "free_shipping")
    assert short.exit_code == 1 and "not enough points: 100 of 500" in short.output
    unknown = await _cli("rewards", "redeem", "nobody", "free_shipping")
    assert unknown.exit_code == 1 and "no customer 'nobody'" in unknown.output
    assert balance(db, "c1", utcnow()) == 100


async def test_coupons_import_fills_a_pool_all_or_nothing(cli_env: Path, db, tmp_path: Path) -> None:
    good = tmp_path / "codes.csv"
    good.write_text("code,value\nAB-12,15%\ncd34,15%\n")
    result = await _cli("coupons", "import", "PLATFORM", str(good))
    assert result.exit_code == 0, result.output
    assert "2 codes imported into the PLATFORM pool (2 not issued yet)" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("EF56\nAB12\nEF56\n")
    refused = await _cli("coupons", "import", "PLATFORM", str(bad))
    assert refused.exit_code == 1
    assert "line 3: EF56 repeats line 1" in refused.output and "nothing imported: 1 problem(s)" in refused.output
    taken = tmp_path / "taken.csv"
    taken.write_text("EF56\nAB12\n")
    again = await _cli("coupons", "import", "PLATFORM", str(taken))
    assert again.exit_code == 1 and "AB12 is already imported or issued" in again.output
    not_pool = await _cli("coupons", "import", "SHIP", str(good))
    assert not_pool.exit_code == 1 and "has no pool: set `pool: true`" in not_pool.output
    with session_scope(db) as session:
        assert sorted(session.exec(select(PooledCoupon.code)).all()) == ["AB12", "CD34"]
