"""Async SQLAlchemy engines for both supported databases, from one plain URL.

`sqlite:///path` (the embedded default) and `postgresql://user@host/db` (production) are accepted as
users write them; the async drivers (aiosqlite, asyncpg) are chosen here. A `search_path` query
parameter on a PostgreSQL URL selects a schema (the tests give each test its own).
SQLite runs in WAL mode with a busy timeout, so one writer and many readers share a file. A SQLite file
is private to the service's user: `private_sqlite_file` creates its folder 0700 (when it creates it) and
the file 0600 before SQLite opens it; SQLite gives its -wal and -shm files the database file's mode.
An upsert (`INSERT ... ON CONFLICT`) is spelled the same on both: `upsert_insert(dialect, table)`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> tuple[URL, dict[str, Any]]:
    """The async-driver URL and the connect arguments for a user's database URL."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
        connect_args["timeout"] = 30
    elif backend in ("postgresql", "postgres"):
        query = dict(parsed.query)
        search_path = query.pop("search_path", None)
        parsed = parsed.set(drivername="postgresql+asyncpg", query=query)
        if search_path:
            connect_args["server_settings"] = {"search_path": str(search_path)}
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed, connect_args


def private_sqlite_file(path: Path) -> None:
    """Make `path` ready for SQLite, readable by this user only: a missing folder is created 0700 (one
    that exists is the operator's to set), a missing file is created empty with mode 0600, and an
    existing file of this user's that is open to others is narrowed to 0600.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        found = os.stat(path)
        if found.st_mode & 0o077 and found.st_uid == os.getuid():  # a reader may not own the file
            os.chmod(path, 0o600)


def utc_aware(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime: SQLite hands back naive ones (everything is stored in UTC),
    PostgreSQL aware ones in the session's zone.
    """
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def upsert_insert(dialect: Dialect, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` (a Table or a table model) in `dialect`'s own construct, which takes
    `on_conflict_do_nothing` and `on_conflict_do_update` (with `excluded`) alike on PostgreSQL and SQLite.
    """
    return postgresql.insert(table) if dialect.name == "postgresql" else sqlite.insert(table)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (see the module docstring); extra kwargs go to SQLAlchemy."""
    parsed, connect_args = async_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        private_sqlite_file(Path(parsed.database))
    engine = create_async_engine(parsed, connect_args=connect_args, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


DATA_ERROR_CLASSES = ("22", "23")
"""SQLSTATE classes of a value the database refuses: data exception (a NUL in text, a number out of
range, ...) and integrity constraint violation."""


def is_data_error(error: BaseException) -> bool:
    """True when the database or its driver refused a value, so the same statement fails again on any
    connection (a data error), as opposed to an outage, a lock or a cancellation (store trouble).

    PostgreSQL: SQLSTATE class 22 or 23 (asyncpg's own refusal of a parameter is 22000); SQLite: the
    driver's OverflowError (an integer beyond 64 bits), a DataError or an IntegrityError; both: a text
    that cannot be encoded (UnicodeError). SQLAlchemy's wrapper is looked through (`.orig`), nothing else.
    """
    current: BaseException | None = error
    for _ in range(4):  # SQLAlchemy's error -> the adapted DBAPI error -> the driver's own
        if current is None:
            return False
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in DATA_ERROR_CLASSES:
            return True
        if isinstance(current, OverflowError | UnicodeError | sqlite3.DataError | sqlite3.IntegrityError):
            return True
        current = getattr(current, "orig", None)
    return False


def data_error_reason(error: BaseException) -> str:
    """The database's own message of a data error, one line, without the statement or its parameters
    (SQLAlchemy appends both; a parameter may be a sealed secret or a whole row).
    """
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:300]


STORE_CHECK_TIMEOUT_S = 2.0


async def answers(engine: AsyncEngine, *, timeout_s: float = STORE_CHECK_TIMEOUT_S) -> bool:
    """Whether the database answers `SELECT 1` within `timeout_s`: a worker's readiness check."""
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the store means: not ready
        return False
    return True
