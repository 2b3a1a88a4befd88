"""`journeys import shopify`: the back-fill (core/events/backfill.py) with this process's
Shopify Admin API client and wiring."""

from __future__ import annotations

from pathlib import Path

from core.events.backfill import BackfillReport, Progress, import_shopify
from core.intake.importing import ImportStopped
from processes.settings import ServiceSettings, SettingsError
from processes.shops import build_shopify
from processes.wiring import open_catalog, wire


async def backfill_shopify(settings: ServiceSettings, *, journeys_dir: Path | None = None,
                           progress: Progress | None = None, restart: bool = False) -> BackfillReport:
    """Raises SettingsError without the Shopify settings, ImportStopped without Temporal
    (imported opt-ins start journeys), ShopError when Shopify stays unavailable (run it
    again: it goes on from the page it was on)."""
    admin = build_shopify(settings)
    if admin is None:
        raise SettingsError("journeys import shopify needs JOURNEYS_SHOPIFY_SHOP_DOMAIN and "
                            "JOURNEYS_SHOPIFY_ADMIN_TOKEN (an Admin API token with read_customers and read_orders)")
    catalog = open_catalog(settings, journeys_dir)
    try:
        wiring = await wire(settings, catalog=catalog)
    except RuntimeError as err:
        raise ImportStopped(f"cannot reach Temporal at {settings.temporal_address} ({err}); nothing was imported. "
                            "Imported opt-ins start journeys, so the import needs the Temporal server") from err
    try:
        return await import_shopify(wiring.router, wiring.replies, admin, progress=progress, restart=restart)
    finally:
        wiring.close()
