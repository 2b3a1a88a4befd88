"""Rewards (points spent for a coupon) and coupons at the checkout, in core: the balance
check, idempotency, races, pools of imported codes, and the one redemption rule the
checkout route and the purchase event share. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import select

from core.loyalty import coupons
from core.loyalty.rewards import RewardRefused, redeem
from language.config import Loyalty
from store.db import session_scope
from store.tables import Coupon, PooledCoupon
from tests.loyalty.support import T0, balance, customer, ledger, loyalty_catalog, make_customer, purchase, router_for

REWARDS = """
points: {per_currency_unit: 1, expire_after: 365d}
coupons:
  SHIP: {discount: free shipping, expires_in: 30d, prefix: FS}
  PLATFORM: {discount: "15%", pool: true}
rewards:
  free_shipping: {points: 500, coupon: SHIP, description: Free shipping on one order}
  platform_15: {points: 300, coupon: PLATFORM}
"""


@pytest.fixture
def catalog(journeys_dir: Path) -> Any:
    return loyalty_catalog(journeys_dir, loyalty=REWARDS)


async def _with_points(catalog: Any, db: Any, customer_id: str, points: int) -> None:
    await purchase(router_for(catalog, db), customer_id, points, T0 - timedelta(days=1),
                   event_id=f"order:{customer_id}:{points}")


def _coupons(db: Any) -> list[Coupon]:
    with session_scope(db) as session:
        return list(session.exec(select(Coupon)).all())


def _import(db: Any, series: str, codes: list[str]) -> int:
    with session_scope(db) as session:
        return coupons.import_pool(session, series, codes, T0 - timedelta(days=2))


# --- loyalty.yaml -------------------------------------------------------------------------------


def test_a_reward_names_an_existing_series_and_costs_at_least_a_point() -> None:
    with pytest.raises(ValidationError, match="reward 'gift': unknown coupon series 'NOPE'"):
        Loyalty.model_validate({"coupons": {"SHIP": {"discount": "x"}}, "rewards": {"gift": {"points": 5,
                                                                                               "coupon": "NOPE"}}})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Loyalty.model_validate({"coupons": {"SHIP": {"discount": "x"}}, "rewards": {"gift": {"points": 0,
                                                                                               "coupon": "SHIP"}}})
    with pytest.raises(ValidationError, match="already answers"):
        Loyalty.model_validate({"rewards_keyword": "stop"})
    assert Loyalty.model_validate({"rewards_keyword": " points "}).rewards_keyword == "POINTS"


# --- redeem ----------------------------------------------------------------------------------------


async def test_redeeming_spends_the_points_once_per_key_and_issues_one_coupon(catalog: Any, db: Any) -> None:
    await _with_points(catalog, db, "c1", 620)
    first = redeem(db, catalog.loyalty, "c1", "free_shipping", key="k1", at=T0)
    assert (first.points, first.balance, first.repeat) == (500, 120, False)
    assert first.code.startswith("FS") and first.discount == "free shipping"
    assert first.expires_at == T0 + timedelta(days=30)
    again = redeem(db, catalog.loyalty, "c1", "free_shipping", key="k1", at=T0 + timedelta(minutes=1))
    assert (again.code, again.balance, again.repeat) == (first.code, 120, True)
    spent = [e for e in ledger(db, "c1") if e.points < 0]
    assert [(e.points, e.reason, e.source, e.key) for e in spent] == [(-500, "reward: free_shipping", "reward",
                                                                      "reward:c1:k1")]
    assert [(c.code, c.customer_id, c.series) for c in _coupons(db)] == [(first.code, "c1", "SHIP")]
    assert balance(db, "c1", T0) == 120 and customer(db, "c1").points == 120  # the cached balance too


async def test_not_enough_points_is_refused_with_the_balance_and_nothing_changes(catalog: Any, db: Any) -> None:
    await _with_points(catalog, db, "c1", 320)
    with pytest.raises(RewardRefused, match=r"^not enough points: 320 of 500$") as refused:
        redeem(db, catalog.loyalty, "c1", "free_shipping", key="k1", at=T0)
    assert refused.value.reason == "not_enough_points"
    assert all(e.points > 0 for e in ledger(db, "c1")) and _coupons(db) == []


async def test_a_key_cannot_be_reused_for_another_reward_and_unknown_rewards_are_named(catalog: Any,
                                                                                       db: Any) -> None:
    await _with_points(catalog, db, "c1", 2000)
    _import(db, "PLATFORM", ["P1"])
    redeem(db, catalog.loyalty, "c1", "free_shipping", key="k1", at=T0)
    with pytest.raises(RewardRefused, match="was used for another reward") as refused:
        redeem(db, catalog.loyalty, "c1", "platform_15", key="k1", at=T0)
    assert refused.value.reason == "key_reused"
    with pytest.raises(RewardRefused, match=r"no reward 'gift' \(rewards: free_shipping, platform_15\)"):
        redeem(db, catalog.loyalty, "c1", "gift", key="k2", at=T0)
    assert balance(db, "c1", T0) == 1500


async def test_two_redemptions_racing_for_one_rewards_worth_of_points_one_wins(catalog: Any, db: Any) -> None:
    await _with_points(catalog, db, "c1", 500)

    def attempt(key: str) -> Any:
        try:
            return redeem(db, catalog.loyalty, "c1", "free_shipping", key=key, at=T0)
        except RewardRefused as err:
            return err

    for _ in range(3):
        results = await asyncio.gather(*(asyncio.to_thread(attempt, f"race-{n}") for n in range(4)))
        won = [r for r in results if not isinstance(r, RewardRefused)]
        assert len(won) <= 1
    assert len([e for e in ledger(db, "c1") if e.points < 0]) == 1  # exactly one, over all the rounds
    assert balance(db, "c1", T0) == 0 and len(_coupons(db)) == 1


async def test_the_same_key_racing_spends_once(catalog: Any, db: Any) -> None:
    await _with_points(catalog, db, "c1", 1000)
    results = await asyncio.gather(*(asyncio.to_thread(redeem, db, catalog.loyalty, "c1", "free_shipping",
                                                       key="same", at=T0) for _ in range(4)))
    assert len({r.code for r in results}) == 1 and sorted(r.repeat for r in results) == [False, True, True, True]
    assert balance(db, "c1", T0) == 500


# --- pools ---------------------------------------------------------------------------------------------


def test_a_pool_file_is_one_code_per_line_or_a_code_column_and_bad_lines_are_named() -> None:
    assert coupons.read_codes("abc-123\n\nXYZ9\n") == ["ABC123", "XYZ9"]
    assert coupons.read_codes("id,code\n1,AAA\n2,bbb\n") == ["AAA", "BBB"]
    with pytest.raises(coupons.PoolImportError) as bad:
        coupons.read_codes("code\nAAA\nBBB\naaa\n1,\nnot a code!\n" + "X" * 40 + "\n")
    assert bad.value.problems == ["line 4: AAA repeats line 2", "line 6: 'not a code!' is not a code (letters and "
                                  "digits, at most 32)", f"line 7: '{'X' * 40}' is not a code (letters and digits, "
                                  "at most 32)"]
    with pytest.raises(coupons.PoolImportError, match="no codes in the file"):
        coupons.read_codes("code\n\n")
    with pytest.raises(coupons.PoolImportError, match="at most 100000 per file"):
        coupons.read_codes("\n".join(f"C{n}" for n in range(coupons.MAX_IMPORT_CODES + 1)))


async def test_a_pool_refuses_codes_already_imported_or_issued_all_or_nothing(catalog: Any, db: Any) -> None:
    await _with_points(catalog, db, "c1", 500)
    issued = redeem(db, catalog.loyalty, "c1", "free_shipping", key="k", at=T0).code
    assert _import(db, "PLATFORM", ["P1", "P2"]) == 2
    with pytest.raises(coupons.PoolImportError) as refused:
        _import(db, "PLATFORM", ["P3", "P2", issued])
    assert sorted(refused.value.problems) == sorted([f"{issued} is already imported or issued",
                                                    "P2 is already imported or issued"])
    with session_scope(db) as session:
        assert coupons.pool_size(session, "PLATFORM") == 2  # P3 was not imported either


async def test_a_pool_series_issues_its_codes_then_refuses_when_empty(catalog: Any, db: Any) -> None:
    for name in ("c1", "c2", "c3"):
        await _with_points(catalog, db, name, 1000 if name == "c1" else 300)
    _import(db, "PLATFORM", ["P1", "P2"])
    codes = await asyncio.gather(*(asyncio.to_thread(redeem, db, catalog.loyalty, name, "platform_15", key="k",
                                                     at=T0) for name in ("c2", "c3")))
    assert sorted(c.code for c in codes) == ["P1", "P2"]  # racing issuers (no shared lock) take different codes
    assert all(c.expires_at is None and c.discount == "15%" for c in codes)
    with pytest.raises(RewardRefused, match="no PLATFORM coupon left") as empty:
        redeem(db, catalog.loyalty, "c1", "platform_15", key="k3", at=T0)
    assert empty.value.reason == "coupon_pool_empty"
    assert balance(db, "c1", T0) == 1000  # the refused one spent nothing
    with session_scope(db) as session:
        assert session.exec(select(PooledCoupon)).all() == []
        assert {c.customer_id for c in session.exec(select(Coupon)).all()} == {"c2", "c3"}


# --- the checkout and the purchase event ------------------------------------------------------------------


async def _issued(catalog: Any, db: Any, customer_id: str = "c1") -> str:
    await _with_points(catalog, db, customer_id, 500)
    return redeem(db, catalog.loyalty, customer_id, "free_shipping", key="k", at=T0).code


async def test_a_code_is_redeemed_once_per_order_idempotently(catalog: Any, db: Any) -> None:
    code = await _issued(catalog, db)
    series = catalog.loyalty.coupons
    with session_scope(db) as session:
        looked = coupons.lookup(session, code.lower(), T0, series)
    assert (looked.valid, looked.reason, looked.customer_id, looked.discount) == (True, None, "c1", "free shipping")
    with session_scope(db) as session:
        first = coupons.redeem(session, f" {code[:3]}-{code[3:]} ", order_id="o1", at=T0, coupons=series)
    assert (first.redeemed, first.repeat, first.state.redeemed_order_id) == (True, False, "o1")
    with session_scope(db) as session:
        again = coupons.redeem(session, code, order_id="o1", at=T0 + timedelta(hours=1), coupons=series)
        other = coupons.redeem(session, code, order_id="o2", at=T0 + timedelta(hours=1), coupons=series)
    assert (again.redeemed, again.repeat, again.state.redeemed_at) == (True, True, T0)
    assert (other.redeemed, other.state.reason) == (False, "redeemed")
    with session_scope(db) as session:
        assert coupons.lookup(session, code, T0, series).reason == "redeemed"
        assert coupons.lookup(session, "NOPE", T0, series).reason == "unknown"


async def test_expired_and_someone_elses_codes_are_not_redeemed(catalog: Any, db: Any) -> None:
    code = await _issued(catalog, db)
    series = catalog.loyalty.coupons
    with session_scope(db) as session:
        expired = coupons.redeem(session, code, order_id="o1", at=T0 + timedelta(days=30), coupons=series)
        not_yours = coupons.redeem(session, code, order_id="o1", at=T0, coupons=series, customer_id="c2")
    assert (expired.redeemed, expired.state.reason) == (False, "expired")
    assert (not_yours.redeemed, not_yours.state.reason) == (False, "not_yours")
    with session_scope(db) as session:
        assert session.get(Coupon, code).redeemed_at is None  # type: ignore[union-attr]


async def test_two_orders_racing_for_one_code_one_wins(catalog: Any, db: Any) -> None:
    code = await _issued(catalog, db)

    def attempt(order: str) -> bool:
        with session_scope(db) as session:
            return coupons.redeem(session, code, order_id=order, at=T0, coupons=catalog.loyalty.coupons).redeemed

    won = await asyncio.gather(*(asyncio.to_thread(attempt, f"o{n}") for n in range(4)))
    assert sorted(won) == [False, False, False, True]


async def test_the_purchase_event_still_redeems_and_agrees_with_the_checkout(catalog: Any, db: Any) -> None:
    code = await _issued(catalog, db)
    router = router_for(catalog, db)
    await purchase(router, "c1", 40, T0 + timedelta(hours=1), event_id="p1", coupon_code=code.lower())
    with session_scope(db) as session:
        row = session.get(Coupon, code)
        assert row is not None and (row.redeemed_event_id, row.redeemed_order_id) == ("p1", "p1")
    # Redeemed at the checkout for order 77, then the purchase event of order 77: the same redemption.
    make_customer(db, "c2")
    second = await _issued(catalog, db, "c2")
    with session_scope(db) as session:
        assert coupons.redeem(session, second, order_id="77", at=T0, coupons=catalog.loyalty.coupons).redeemed
    await purchase(router, "c2", 40, T0 + timedelta(hours=1), event_id="p2", coupon_code=second, order_id="77")
    with session_scope(db) as session:
        row = session.get(Coupon, second)
        assert row is not None and (row.redeemed_order_id, row.redeemed_at) == ("77", T0)


async def test_a_spend_lapses_with_the_points_it_took_so_the_balance_stays_above_zero(catalog: Any, db: Any) -> None:
    router = router_for(catalog, db)
    # 300 points lapsing in 10 days, 300 in 300 days (expire_after: 365d).
    await purchase(router, "c1", 300, T0 - timedelta(days=355), event_id="old")
    await purchase(router, "c1", 300, T0 - timedelta(days=65), event_id="new")
    redeem(db, catalog.loyalty, "c1", "free_shipping", key="k", at=T0)
    spent = sorted((e.points, e.expires_at) for e in ledger(db, "c1") if e.points < 0)
    assert spent == [(-300, T0 + timedelta(days=10)), (-200, T0 + timedelta(days=300))]  # soonest first
    assert balance(db, "c1", T0) == 100
    assert balance(db, "c1", T0 + timedelta(days=11)) == 100  # the old points lapsed with what they paid
    assert balance(db, "c1", T0 + timedelta(days=301)) == 0
    # A second spend takes what is left of the later points only.
    await purchase(router, "c1", 450, T0 - timedelta(days=1), event_id="more")
    redeem(db, catalog.loyalty, "c1", "free_shipping", key="k2", at=T0)
    spent = sorted((e.points, e.expires_at) for e in ledger(db, "c1") if e.points < 0 and e.key.startswith(
        "reward:c1:k2"))
    assert spent == [(-400, T0 + timedelta(days=364)), (-100, T0 + timedelta(days=300))]
    for days in (0, 11, 301, 365):
        assert balance(db, "c1", T0 + timedelta(days=days)) >= 0


async def test_the_accounts_next_expiry_counts_what_a_date_really_loses(catalog: Any, db: Any) -> None:
    from core.loyalty.ledger import load_account

    router = router_for(catalog, db)
    await purchase(router, "c1", 600, T0 - timedelta(days=355), event_id="old")  # lapses in 10 days
    redeem(db, catalog.loyalty, "c1", "free_shipping", key="k", at=T0)
    account = load_account(db, "c1", catalog.loyalty, T0)
    assert (account.balance, account.next_expiry_points, account.next_expiry_at) == (100, 100,
                                                                                     T0 + timedelta(days=10))


async def test_the_expiry_reminder_announces_only_what_a_spend_left(journeys_dir: Path, db: Any) -> None:
    from core.loyalty.maintenance import run_daily
    from tests.loyalty.support import events

    catalog = loyalty_catalog(journeys_dir, loyalty=REWARDS.replace(
        "points: {per_currency_unit: 1, expire_after: 365d}",
        "points: {per_currency_unit: 1, expire_after: 365d, expiry_reminder: 14d}"))
    router = router_for(catalog, db)
    await purchase(router, "c1", 600, T0 - timedelta(days=355), event_id="old")  # lapses in 10 days
    await purchase(router, "c1", 1000, T0 - timedelta(days=65), event_id="new")  # in 300 days
    redeem(db, catalog.loyalty, "c1", "free_shipping", key="k", at=T0)  # 500 of the 600
    await run_daily(router, T0 + timedelta(hours=1))
    [reminder] = events(db, "points_expiring", "c1")
    assert (reminder.properties["points"], reminder.properties["balance"]) == (100, 1100)


def test_the_rewards_keyword_may_not_be_a_join_keyword(journeys_dir: Path) -> None:
    from language.validate import validate_directory

    loyalty_catalog(journeys_dir, loyalty=REWARDS + "rewards_keyword: join\n")
    (journeys_dir / "settings.yaml").write_text("text_to_join: {keywords: [JOIN]}\n")
    [problem] = validate_directory(journeys_dir).problems
    assert problem.file.endswith("loyalty.yaml") and problem.line == 9
    assert "rewards_keyword JOIN is also a text_to_join keyword in settings.yaml" in problem.message
