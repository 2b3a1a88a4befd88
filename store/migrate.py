"""Schema migrations (Alembic), run programmatically so `journeys db upgrade` and the
worker's start-up need no alembic.ini in the working directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def autogenerate(engine: Engine, message: str) -> None:
    """Developer helper: write a new revision from the difference with the models."""
    command.revision(alembic_config(engine), message=message, autogenerate=True)
