"""Shared fixtures: a migrated database on SQLite *and* PostgreSQL, and a fresh
time-skipping Temporal server per test (time skipping is global to a server)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from processes.temporal import quiet_runtime, register_search_attributes
from store.db import open_database
from store.migrate import upgrade

BIN = Path(os.sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get("JOURNEYS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    db = open_database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test run, migrated once, dropped at the end.
    CI must exercise PostgreSQL: if it is not reachable, the tests fail, not skip."""
    name = f"journeys_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    db = open_database(url)
    upgrade(db)
    db.dispose()
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A migrated, empty database; every test using it runs on both backends."""
    if request.param == "sqlite":
        path = tmp_path / "journeys.db"
        shutil.copy(sqlite_template, path)
        db = open_database(f"sqlite:///{path}")
    else:
        db = open_database(request.getfixturevalue("postgres_url"))
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with db.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.dispose()


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
        runtime=quiet_runtime(),  # the test server lacks newer capabilities: spare us its warnings
    )
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()


@pytest.fixture
def journeys_dir(tmp_path: Path) -> Path:
    return tmp_path / "journeys"


@pytest.fixture
def sender():  # type: ignore[no-untyped-def]
    from tests.runtime.support import CountingSender

    return CountingSender()


@pytest.fixture
def simulation(env: WorkflowEnvironment, db: Engine, sender):  # type: ignore[no-untyped-def]
    """A factory: `async with simulation(catalog) as run:` gives a tests.runtime.support.Run."""
    from contextlib import asynccontextmanager

    from processes.simulate import Simulation
    from tests.runtime.support import MONDAY_3PM, Run

    @asynccontextmanager
    async def open_run(catalog, start=MONDAY_3PM):  # type: ignore[no-untyped-def]
        async with Simulation(env, catalog, db, start=start, sender=sender) as sim:
            yield Run(sim)

    return open_run
