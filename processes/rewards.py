"""What `journeys rewards redeem` and `journeys coupons import` run: the catalogue and
the database opened from the environment, as the other commands do."""

from __future__ import annotations

from pathlib import Path

from core.clock import utcnow
from core.loyalty import coupons
from core.loyalty.rewards import Redeemed, redeem
from processes.settings import ServiceSettings
from processes.wiring import open_catalog, open_migrated_database
from store.db import session_scope


def redeem_reward(settings: ServiceSettings, customer_id: str, reward: str, *, key: str,
                  journeys_dir: Path | None = None) -> Redeemed:
    """Raises UnknownCustomer, RewardRefused."""
    catalog = open_catalog(settings, journeys_dir)
    db = open_migrated_database(settings)
    try:
        return redeem(db, catalog.loyalty, customer_id, reward, key=key, at=utcnow())
    finally:
        db.dispose()


class UnknownSeries(ValueError):
    pass


def import_pool(settings: ServiceSettings, series: str, text: str, *,
                journeys_dir: Path | None = None) -> tuple[int, int]:
    """Import a CSV of codes into a ``pool: true`` series: (codes added, codes now in the
    pool). Raises UnknownSeries, core.loyalty.coupons.PoolImportError (nothing imported)."""
    catalog = open_catalog(settings, journeys_dir)
    spec = catalog.loyalty.coupons.get(series)
    if spec is None:
        raise UnknownSeries(f"no coupon series {series!r} in loyalty.yaml")
    if not spec.pool:
        raise UnknownSeries(f"coupon series {series!r} has no pool: set `pool: true` on it in loyalty.yaml first")
    codes = coupons.read_codes(text)
    db = open_migrated_database(settings)
    try:
        with session_scope(db) as session:
            added = coupons.import_pool(session, series, codes, utcnow())
        with session_scope(db, readonly=True) as session:
            return added, coupons.pool_size(session, series)
    finally:
        db.dispose()
