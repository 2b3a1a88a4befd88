"""Schema migrations (Alembic), run programmatically so `journeys db upgrade` and the
worker's start-up need no alembic.ini in the working directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["db"] = db
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(db), revision)


def autogenerate(db: Database, message: str) -> None:
    """Developer helper: write a new revision from the difference with the models."""
    command.revision(alembic_config(db), message=message, autogenerate=True)
