"""The few expressions that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, cast, extract, func, literal_column
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from store.db import Database

REPORT_WORK_MEM = "64MB"


@contextmanager
def report_connection(db: Database) -> Iterator[Connection]:
    """One read-only transaction for all of a report's queries (one snapshot, one pooled
    connection). On PostgreSQL with room for the report's hash joins: at the default
    work_mem (4 MB) a join over a journey's 100,000s of runs spills to disk in batches."""
    with db.execution_options(readonly=True).connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        yield connection


def not_indexed(db: Database | Connection, column: Any) -> Any:
    """``column`` as SQLite's planner may not look it up in an index: the unary ``+`` (its
    documented way). Given an index that starts with a journey's id, SQLite drives a join
    from it (every text of the journey, then a search per text); PostgreSQL weighs both."""
    if db.dialect.name != "sqlite":
        return column
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def shifted(db: Database | Connection, column: Any, delta: timedelta) -> Any:
    """``column + delta``, computed in the database (``delta`` in whole seconds)."""
    seconds = int(delta.total_seconds())
    if db.dialect.name == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': this spelling compares as text with it.
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"{seconds:+d} seconds")
    return column + literal_column(f"interval '{seconds} seconds'")


def month_index(column: Any) -> Any:
    """year * 12 + month - 1 of a UTC timestamp: months count by subtraction."""
    return cast(extract("year", column), Integer) * 12 + cast(extract("month", column), Integer) - 1


def month_of(index: int) -> str:
    """'2026-03' for a month_index."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def index_of(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1
