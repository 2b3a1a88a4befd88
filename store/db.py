"""The database handle and its sessions: SQLite embedded by default, PostgreSQL in production."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

DEFAULT_URL = "sqlite:///.data/journeys.db"
BUSY_TIMEOUT_SECONDS = 30  # how long a SQLite writer waits for its turn, then fails
_WRITERS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()  # per SQLite database handle

# The handle every layer passes around: a SQLAlchemy Engine (a connection pool, not
# a connection), named for what it is to the rest of the code.
Database = Engine


def a_writer_is_in(db: Database) -> bool:
    """Whether one of this process's writers holds the SQLite database's write turn (False for
    PostgreSQL, whose writers need none)."""
    writers = _WRITERS.get(db)
    return writers is not None and writers.locked()


def normalize_url(url: str) -> str:
    """Accept the usual postgres spellings and route them through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_database(url: str = DEFAULT_URL) -> Database:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_database(url)
    # Enough connections for every thread that may hold one (16 activity threads plus the
    # 32 the async activities use): a pool smaller than that makes threads queue for it.
    return create_engine(url, pool_pre_ping=True, pool_size=16, max_overflow=40, hide_parameters=True)


def _sqlite_database(url: str) -> Database:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # The driver's own transaction handling is off (isolation_level=None) so that we
    # choose how each transaction begins. In WAL mode a transaction that reads and then
    # writes fails at once (SQLITE_BUSY) if another writer got in between, without
    # waiting: so writers take the lock up front (BEGIN IMMEDIATE, which does wait,
    # up to busy_timeout), and only read-only sessions begin deferred.
    # hide_parameters: a database error must not copy phone numbers or message bodies
    # into logs or Temporal's failure messages.
    db = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS,
                                          "isolation_level": None},
                           hide_parameters=True, pool_size=16, max_overflow=40)

    @event.listens_for(db, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    # SQLite's own wait for its write lock polls with growing sleeps (up to 100 ms), so a
    # writer can lose the lock to newer ones for seconds; this process's writers wait here
    # instead (woken as soon as it is free, no sleeps), leaving SQLite to arbitrate between
    # processes only. Held from BEGIN IMMEDIATE to the end of the transaction: the span
    # SQLite holds its write lock anyway. A wait that outlasts the busy timeout goes on to
    # SQLite's own wait, as before: never a hang.
    writers = _WRITERS.setdefault(db, threading.Lock())

    @event.listens_for(db, "begin")
    def _begin(connection) -> None:
        readonly = connection.get_execution_options().get("readonly", False)
        if not readonly:
            connection.info["holds_writers"] = writers.acquire(timeout=BUSY_TIMEOUT_SECONDS)
        try:
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
        except BaseException:
            _release(connection.info)
            raise

    def _release(info: dict) -> None:
        if info.pop("holds_writers", False):
            writers.release()

    event.listen(db, "commit", lambda connection: _release(connection.info))
    event.listen(db, "rollback", lambda connection: _release(connection.info))
    # A connection handed back without either (a dropped session): its turn ends all the same.
    event.listen(db, "checkin", lambda _dbapi, record: _release(record.info))

    return db


@contextmanager
def session_scope(db: Database, *, readonly: bool = False) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error.

    Read-then-write sections that must not interleave with a concurrent writer
    (frequency caps, points) lock the customer row (SELECT ... FOR UPDATE) on
    PostgreSQL; on SQLite every writing transaction is serialized anyway.
    ``readonly`` sessions may run alongside writers (SQLite: a deferred BEGIN).
    """
    bind = db.execution_options(readonly=True) if readonly else db
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_postgres(db: Database) -> bool:
    return db.dialect.name == "postgresql"


def insert_ignoring_duplicates(session: Session, table: type, values: dict) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: concurrent writers of the same row both succeed."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        session.execute(postgres_insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
