"""The migrations build exactly the schema store/tables.py declares: a column, index or
constraint in one and not the other (a table's second ``__table_args__`` silently
replacing its first, a migration without its model change) fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)


def test_the_migrated_schema_is_the_declared_one(db: Engine) -> None:
    with db.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
