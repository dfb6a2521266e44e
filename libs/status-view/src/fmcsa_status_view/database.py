"""How the status store runs SQL, for its one writer and its many readers, on SQLite or PostgreSQL.

SQLite runs in the calling thread with the standard library's driver, no worker thread: a statement
here takes micro- to milliseconds, while a worker thread (aiosqlite) must win the GIL back from a busy
event loop after every step, each time waiting up to the interpreter's switch interval (5 ms), which
made a batch of a few thousand rows take seconds and a status read tens of milliseconds. The price:
a statement blocks the event loop while it runs, and a writer waiting for SQLite's write lock (only
a rebuild's swap takes it from the projector) blocks its loop meanwhile.

Every transaction begins explicitly: `BEGIN IMMEDIATE` for the writer (the write lock is held before
the position is read, so two projectors can never fold the same events), `BEGIN` for a reader (one
snapshot for the whole read). PostgreSQL runs through SQLAlchemy's asyncpg engine: readers in
REPEATABLE READ (one snapshot), the writer locks the position row itself (`SELECT ... FOR UPDATE`).

Statements use positional `?` parameters; for PostgreSQL they become `$1, $2, ...` (no statement
here has a `?` anywhere else).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Table, inspect, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from fmcsa_runtime.database import create_engine, is_sqlite, private_sqlite_file

WRITER_CACHE_KIB = 256 * 1024
"""SQLite page cache of the writer: a batch touches rows all over the sync log (request ids are
random), and the default 2 MB would read most B-tree pages back from the OS every batch."""

READER_MMAP_BYTES = 2_147_418_112
"""SQLite `mmap_size` of a reader (SQLite's default ceiling, about 2 GiB): a status read's few B-tree
pages come from the OS page cache shared by every connection, with no read(2) and copy each: a
company's status took about 160 us through the default 2 MB cache, 50 us mapped (100,000 companies)."""

_FETCH = 2_000


class Session(Protocol):
    """One open transaction."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def stream(self, sql: str, params: Sequence[Any] = ()) -> AsyncIterator[tuple[Any, ...]]: ...


class Database(Protocol):
    """The store at one URL, opened for writing (one writer) or reading."""

    sqlite: bool

    def transaction(self) -> AbstractAsyncContextManager[Session]: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement, read as one snapshot (a reader's single query)."""
        ...

    async def create_tables(self, tables: Sequence[Table]) -> None: ...

    async def dispose(self) -> None: ...


BULK_PRAGMAS = ("journal_mode=MEMORY", "synchronous=OFF")
"""A writer building a new SQLite file nobody reads yet (`bulk`): the rollback journal in memory (a
batch can still be rolled back and bisected) and no fsync per commit; a crash leaves a file that is
thrown away anyway. The store's owner switches to the live settings before the file is swapped in."""


def open_database(url: str, *, writer: bool, bulk: bool = False) -> Database:
    """The store at `url` (`sqlite:///path` or `postgresql://...`); opening connects to nothing yet.
    `bulk` (SQLite writer only; see `BULK_PRAGMAS`): a new file no reader opens before it is finished.
    """
    if is_sqlite(url):
        database = make_url(url).database
        if not database:
            raise ValueError("the status store needs a SQLite file, not an in-memory database")
        return SqliteDatabase(Path(database).resolve(), writer=writer, bulk=bulk)
    engine = create_engine(url) if writer else create_engine(url, isolation_level="REPEATABLE READ")
    return PostgresDatabase(engine)


class _SqliteSession:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(sql, params)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connection.executemany(sql, rows)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, params).fetchall()

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._connection.execute(sql, params).fetchone()
        return None if row is None else row[0]

    async def stream(self, sql: str, params: Sequence[Any] = ()) -> AsyncIterator[tuple[Any, ...]]:
        cursor = self._connection.execute(sql, params)
        while rows := cursor.fetchmany(_FETCH):
            for row in rows:
                yield row


class SqliteDatabase:
    """SQLite in the calling thread; a small pool, so a transaction that awaits something else
    (a dead letter's PubAck) never shares its connection.
    """

    sqlite = True

    def __init__(self, path: Path, *, writer: bool, bulk: bool = False) -> None:
        self.path = path
        self._writer = writer
        self._bulk = writer and bulk
        self._idle: list[sqlite3.Connection] = []
        self._disposed = False

    def _connect(self) -> sqlite3.Connection:
        private_sqlite_file(self.path)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=30000")
        if self._writer:  # WAL is kept in the file: readers find it set by the writer
            journal = BULK_PRAGMAS if self._bulk else ("journal_mode=WAL", "synchronous=NORMAL")
            for pragma in (*journal, f"cache_size=-{WRITER_CACHE_KIB}"):
                connection.execute(f"PRAGMA {pragma}")
        else:
            connection.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
        return connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        connection = self._idle.pop() if self._idle else self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE" if self._writer else "BEGIN")
        except BaseException:
            connection.close()
            raise
        try:
            yield _SqliteSession(connection)
        except BaseException:
            connection.rollback()
            self._release(connection)
            raise
        connection.commit()
        self._release(connection)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # one statement in autocommit mode is its own read transaction: no BEGIN and COMMIT around it
        connection = self._idle.pop() if self._idle else self._connect()
        try:
            rows = connection.execute(sql, params).fetchall()
        except BaseException:
            connection.close()
            raise
        self._release(connection)
        return rows

    def _release(self, connection: sqlite3.Connection) -> None:
        if self._disposed or len(self._idle) >= 4:
            connection.close()
        else:
            self._idle.append(connection)

    async def create_tables(self, tables: Sequence[Table]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_sync_engine(f"sqlite:///{self.path}")
        try:
            with engine.begin() as connection:
                create_or_extend(connection, tables)
        finally:
            engine.dispose()

    async def dispose(self) -> None:
        self._disposed = True
        while self._idle:
            self._idle.pop().close()


class _PostgresSession:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._connection.exec_driver_sql(dollar(sql), tuple(params))

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._connection.exec_driver_sql(dollar(sql), [tuple(row) for row in rows])

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = await self._connection.exec_driver_sql(dollar(sql), tuple(params))
        return [tuple(row) for row in result]

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        result = await self._connection.exec_driver_sql(dollar(sql), tuple(params))
        return result.scalar()

    async def stream(self, sql: str, params: Sequence[Any] = ()) -> AsyncIterator[tuple[Any, ...]]:
        if params:
            raise ValueError("streamed statements take no parameters")
        result = await self._connection.stream(text(sql.replace(":", r"\:")))
        async for row in result:
            yield tuple(row)


class PostgresDatabase:
    """PostgreSQL through SQLAlchemy's asyncpg engine."""

    sqlite = False

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self.engine.begin() as connection:
            yield _PostgresSession(connection)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.transaction() as session:
            return await session.fetch(sql, params)

    async def create_tables(self, tables: Sequence[Table]) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(create_or_extend, tables)

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_or_extend(connection: Connection, tables: Sequence[Table]) -> None:
    """Create the missing tables, and add the columns a newer release added to an existing table.

    The one schema change a projection makes in place: a new column that may be empty (a new field of
    the read model). Rows written before it keep it empty until a rebuild (`./fmcsa rebuild-status`)
    fills it from the stream; any other change of shape is a rebuild.
    """
    SQLModel.metadata.create_all(connection, tables=list(tables))
    inspector = inspect(connection)
    for table in tables:
        have = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"{table.name}.{column.name} is missing and may not be empty: rebuild the projection"
                )
            kind = column.type.compile(dialect=connection.dialect)
            preparer = connection.dialect.identifier_preparer
            connection.exec_driver_sql(
                f"ALTER TABLE {preparer.quote(table.name)} ADD COLUMN {preparer.quote(column.name)} {kind}"
            )


_DOLLARS: dict[str, str] = {}


def dollar(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, ...` (cached per statement text)."""
    converted = _DOLLARS.get(sql)
    if converted is None:
        parts = sql.split("?")
        converted = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
        if len(_DOLLARS) < 4096:
            _DOLLARS[sql] = converted
    return converted
