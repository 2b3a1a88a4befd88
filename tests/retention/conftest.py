from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.retention.support import Clock, catalog_for, seed, snapshot


@pytest.fixture
async def seeded(journeys_dir: Path, db, sender, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The rows of tests.retention.support.seed, and a snapshot of them before any retention."""
    catalog = catalog_for(journeys_dir)
    router = await seed(db, catalog, sender, Clock(monkeypatch))
    return SimpleNamespace(catalog=catalog, router=router, before=snapshot(db))
