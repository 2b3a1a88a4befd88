"""SQLite's writers in one process take turns on a lock of the process (store/db.py), held
from BEGIN IMMEDIATE to the end of the transaction, rather than poll SQLite's own write
lock with growing sleeps (a writer starved for seconds under load: bench/README.md). The
turn must end with every transaction, however it ends, or writers would queue for ever."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from store.db import a_writer_is_in, open_database, session_scope
from store.tables import Customer
from tests.runtime.support import DIRECT_MOMENT


@pytest.fixture
def sqlite(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    path = tmp_path / "writers.db"
    shutil.copy(sqlite_template, path)
    db = open_database(f"sqlite:///{path}")
    yield db
    db.dispose()


def _customer(cid: str) -> Customer:
    return Customer(id=cid, created_at=DIRECT_MOMENT, updated_at=DIRECT_MOMENT)


def test_the_turn_lasts_as_long_as_a_write_transaction(sqlite: Engine) -> None:
    with session_scope(sqlite, readonly=True) as session:
        session.exec(select(Customer)).all()
        assert not a_writer_is_in(sqlite)  # readers take no turn
    with session_scope(sqlite) as session:
        session.add(_customer("c1"))
        session.flush()
        assert a_writer_is_in(sqlite)
    assert not a_writer_is_in(sqlite)  # committed

    with pytest.raises(RuntimeError), session_scope(sqlite) as session:
        session.add(_customer("c2"))
        session.flush()
        raise RuntimeError("a failure mid-transaction")
    assert not a_writer_is_in(sqlite)  # rolled back

    dropped = Session(sqlite)
    dropped.add(_customer("c3"))
    dropped.flush()
    assert a_writer_is_in(sqlite)
    dropped.close()  # neither committed nor rolled back by the caller
    assert not a_writer_is_in(sqlite)
    with session_scope(sqlite, readonly=True) as session:
        assert [c.id for c in session.exec(select(Customer))] == ["c1"]


def test_a_second_writer_waits_for_the_turn_not_for_sqlite_then_writes(sqlite: Engine) -> None:
    """While the first holds the turn, the second has not even asked SQLite (no BEGIN
    IMMEDIATE of its own: it is not in SQLite's polling wait), then writes once it may."""
    first_in, second_done = threading.Event(), threading.Event()
    order: list[str] = []
    begun: list[str] = []  # the threads whose BEGIN IMMEDIATE reached SQLite, in order

    def note_begin(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement == "BEGIN IMMEDIATE":
            begun.append(threading.current_thread().name)

    sa_event.listen(sqlite, "before_cursor_execute", note_begin)

    def second() -> None:
        first_in.wait()
        with session_scope(sqlite) as session:
            session.add(_customer("c2"))
            session.flush()  # its BEGIN IMMEDIATE: its turn
            order.append("second writes")
        second_done.set()

    thread = threading.Thread(target=second, name="second")
    thread.start()
    with session_scope(sqlite) as session:
        session.add(_customer("c1"))
        session.flush()
        first_in.set()
        assert not second_done.wait(0.3)  # the second is held at the turn meanwhile
        assert begun == [threading.current_thread().name]  # ... in this process, not at SQLite's lock
        order.append("first commits")  # just before it does
    thread.join(timeout=30)
    assert order == ["first commits", "second writes"] and not a_writer_is_in(sqlite)
    assert begun[1:] == ["second"]
