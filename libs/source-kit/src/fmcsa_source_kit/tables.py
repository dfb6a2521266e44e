"""Opening a source's store: its SQLModel tables, the change outbox and the fetch marks, created if
missing; the base of the stores whose plans may drop rows (`GuardedStore`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Self, TypeVar

import stamina
import structlog
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.guard import DropGuard, create_suspect_drops
from fmcsa_source_kit.marks import FetchMarks
from fmcsa_source_kit.outbox import create_outbox


async def open_store(
    url: str,
    tables: Sequence[Table],
    *,
    migrate: Callable[[Connection], Any] | None = None,
    drop_guard: bool = False,
) -> AsyncEngine:
    """The engine of the store at `url`, with `tables` (and `migrate`, run in the same transaction), the
    change outbox, the fetch marks (`fmcsa_source_kit.marks`) and, with `drop_guard`, the guard's
    `suspect_drops` (`fmcsa_source_kit.guard`) in place. Replicas starting together may race on CREATE
    TABLE (PostgreSQL): the loser tries again (stamina, three attempts) and then finds the tables there.
    """
    engine = create_engine(url)
    try:
        async for attempt in stamina.retry_context(
            on=DBAPIError, attempts=3, wait_initial=0.05, wait_max=0.5
        ):
            with attempt:
                async with engine.begin() as connection:
                    await connection.run_sync(SQLModel.metadata.create_all, tables=list(tables))
                    if migrate is not None:
                        await connection.run_sync(migrate)
                await create_outbox(engine)
                await FetchMarks(engine).create()
                if drop_guard:
                    await create_suspect_drops(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine


T = TypeVar("T")

INSERT_RACE_TRIES = 3
"""Attempts of a store's write when two writers race to insert the same new key."""


async def retry_insert_race(what: str, dot: str, write: Callable[[], Awaitable[T]]) -> T:
    """Run `write` (one transaction of a store); when two writers raced to insert the same new key, the
    loser tries again at once and sees it (stamina, `INSERT_RACE_TRIES` attempts, one
    `stamina.retry_scheduled` line per retry bound to `retrying=what` and the carrier).
    """
    with structlog.contextvars.bound_contextvars(retrying=what, dot=dot):
        async for attempt in stamina.retry_context(
            on=IntegrityError,
            attempts=INSERT_RACE_TRIES,
            timeout=None,
            wait_initial=0.0,
            wait_max=0.0,
            wait_jitter=0.0,
        ):
            with attempt:
                return await write()
    raise AssertionError("stamina ended without a result")  # pragma: no cover


class GuardedStore:
    """A source's store whose plans may drop rows: its engine, its drop guard (`fmcsa_source_kit.guard`)
    and `connect`, which opens `TABLES` (run `migrate` first where a store has one) with the outbox and
    the guard's table. A subclass declares its tables and executes its plans.
    """

    TABLES: ClassVar[Sequence[Table]]
    MIGRATE: ClassVar[Callable[[Connection], Any] | None] = None

    def __init__(self, engine: AsyncEngine, guard: DropGuard) -> None:
        self._engine = engine
        self._guard = guard

    @classmethod
    async def connect(cls, url: str, *, guard: DropGuard | None = None) -> Self:
        """Open the database at `url` (sqlite:/// or postgresql://); create the tables, the change outbox
        and the drop guard's table if absent.
        """
        engine = await open_store(url, cls.TABLES, migrate=cls.MIGRATE, drop_guard=True)
        return cls(engine, guard or DropGuard())

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()
