"""A change gate's generic parts (the kit's `ChangeGate` hook): the pure rule (`fetch_reason`), the watch
(what the gate can vouch for), and `WatchingGate`, which checks its upstream at most once per `check_s`
(and in the background at that pace), keeps the DOTs each check lists and the watch in two tables of the
source's database (so replicas share them), and decides per carrier.

A source's gate subclasses `WatchingGate` with `_check_one(dataset, now)`: read what one dataset lists since
the last check and `_record` it (authority: FMCSA's Motus daily difference datasets; inspections: DataHub's
inspection and crash files). Any failure leaves the tables as they were and makes the gate blind (every
carrier fetched) until a check succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import stamina
import structlog
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, exists, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.database import upsert_insert, utc_aware
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.gate_rule import (
    FetchReason,
    Watch,
    fetch_reason,
    gate_dot,
    parse_dot_page,
)
from fmcsa_source_kit.marks import FetchMark
from fmcsa_source_kit.publication import rows_updated_at
from fmcsa_source_kit.said import Said, _json
from fmcsa_source_kit.upstream import Answer, UpstreamClient

log = structlog.get_logger(__name__)

RETENTION_MARGIN = timedelta(days=1)
PAGE_SIZE = 10_000
"""Rows per page of a gate's listing read (`$limit`; Socrata allows 50,000)."""
MAX_PAGES = 100
"""Pages read before a listing counts as unreadable (a million rows: not a day's changes)."""


def gate_tables(prefix: str, *extra: Column[Any]) -> tuple[MetaData, Table, Table]:
    """A gate's tables, `<prefix>_watch` (per dataset: the position read, the last successful check, since
    when the watch is unbroken; and the gate's `extra` columns) and `<prefix>_dot` (the DOTs each listing
    names, with its position).
    """
    metadata = MetaData()
    watch = Table(
        f"{prefix}_watch",
        metadata,
        Column("dataset", String(9), primary_key=True),
        Column("published_at", DateTime(timezone=True), nullable=False),
        Column("checked_at", DateTime(timezone=True), nullable=False),
        Column("watched_since", DateTime(timezone=True), nullable=False),
        *extra,
    )
    dot = Table(
        f"{prefix}_dot",
        metadata,
        Column("dot", String(8), primary_key=True),
        Column("published_at", DateTime(timezone=True), primary_key=True),
        Column("dataset", String(9), primary_key=True),
    )
    return metadata, watch, dot


# --- reading DataHub (Socrata) -----------------------------------------------------------------------------


def _reader(parse: Callable[..., object], call: str, retry_after_max_s: float) -> Callable[[Answer], object]:
    def read(answer: Answer) -> object:
        said = Said("DataHub", call, answer.status, answer.headers, answer.body)
        return parse(said, answer.at, retry_after_max_s=retry_after_max_s)

    return read


def parse_published(said: Said, now: datetime, *, retry_after_max_s: float) -> datetime | Failure:
    """A dataset's `rowsUpdatedAt` from its metadata (`/api/views/{id}.json`)."""
    body = _json(said, now, retry_after_max_s)
    if isinstance(body, Failure):
        return body
    if not 200 <= said.status < 300:
        return said.refused()
    published = rows_updated_at(said.status, said.body)
    if published is None:
        return said.failure(
            ErrorKind.INVALID_RESPONSE, "DataHub metadata has no rowsUpdatedAt", retryable=False
        )
    return published


async def published_at(datahub: UpstreamClient, dataset: str, retry_after_max_s: float) -> datetime | Failure:
    """`dataset`'s `rowsUpdatedAt` (one metadata call)."""
    result = await datahub.get(
        f"api/views/{dataset}.json", _reader(parse_published, "metadata", retry_after_max_s)
    )
    assert isinstance(result, datetime | Failure)
    return result


async def read_dots(
    datahub: UpstreamClient,
    dataset: str,
    *,
    field: str,
    call: str,
    retry_after_max_s: float,
    where: Mapping[str, str] | None = None,
) -> set[str] | Failure:
    """The DOTs (column `field`) of `dataset`'s rows (those `where`, e.g. `{"$where": ...}`, keeps), in
    pages of `PAGE_SIZE`, at most `MAX_PAGES`.
    """
    read = _reader(partial(parse_dot_page, field=field), call, retry_after_max_s)
    found: set[str] = set()
    for page in range(MAX_PAGES):
        params = {
            "$select": field,
            **(where or {}),
            "$order": ":id",
            "$limit": str(PAGE_SIZE),
            "$offset": str(page * PAGE_SIZE),
        }
        result = await datahub.get(f"resource/{dataset}.json", read, params=params)
        if isinstance(result, Failure):
            return result
        assert isinstance(result, tuple)
        count, dots = result
        found |= dots
        if count < PAGE_SIZE:
            return found
    return Failure(
        ErrorKind.INVALID_RESPONSE,
        retryable=False,
        message=f"DataHub served more than {MAX_PAGES * PAGE_SIZE} rows of {call} {dataset}",
    )


class WatchingGate:
    """The checking, the tables and the decision of a change gate reading DataHub through `datahub`;
    subclasses give `_check_one`. `datasets`: the ids it checks, or a mapping of each to what the subclass
    keeps of it (`self._options`; inspections: the file's date column).
    """

    metadata: MetaData
    watch_table: Table
    dot_table: Table

    def __init__(
        self,
        datahub: UpstreamClient,
        engine: AsyncEngine,
        *,
        datasets: Sequence[str] | Mapping[str, str],
        check_s: float,
        max_gap: timedelta,
        full_refresh: timedelta,
        retry_after_max_s: float,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._datahub = datahub
        self._retry_after_max_s = retry_after_max_s
        self._options: dict[str, str] = dict(datasets) if isinstance(datasets, Mapping) else {}
        self._engine = engine
        self._datasets = tuple(datasets)
        self._check_s = check_s
        self._max_gap = max_gap
        self._full_refresh = full_refresh
        self._clock = clock
        self._monotonic = monotonic
        self._checked: float | None = None
        self._watch: Watch | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._created = False

    @classmethod
    async def create_tables(cls, engine: AsyncEngine) -> None:
        """The gate's tables, if missing; replicas racing on CREATE TABLE (PostgreSQL) try again."""
        async for attempt in stamina.retry_context(
            on=DBAPIError, attempts=3, wait_initial=0.05, wait_max=0.5
        ):
            with attempt:
                async with engine.begin() as connection:
                    await connection.run_sync(cls.metadata.create_all)

    async def decide(self, dot: str, mark: FetchMark | None) -> tuple[FetchReason | None, datetime | None]:
        """Why `dot` needs a fetch (None: it does not) and the position to remember with a fetch."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watching())
        watch = await self.watch()
        listed = False
        if mark is not None and mark.published_at is not None and watch is not None:
            listed = await self._listed(dot, mark.published_at)
        reason = fetch_reason(
            None if mark is None else mark.fetched_at,
            None if mark is None else mark.published_at,
            self._clock(),
            watch,
            listed=listed,
            full_refresh=self._full_refresh,
            max_gap=self._max_gap,
        )
        log.debug("change_gate", gate=type(self).__name__, dot=dot, reason=reason)
        return reason, None if watch is None else watch.position

    def _due(self) -> bool:
        return self._checked is None or self._monotonic() - self._checked >= self._check_s

    async def watch(self) -> Watch | None:
        """The watch, checked again when the last check is `check_s` old. While a check is under way, the
        last one's result (None: it failed) answers at once: a decision never waits for the upstream, bar
        the very first check of the process.
        """
        if not self._due() or (self._lock.locked() and self._checked is not None):
            return self._watch
        async with self._lock:
            if not self._due():  # another caller checked while this one waited
                return self._watch
            if not self._created:  # the tables, created if missing (replicas racing: create_all checks first)
                await self.create_tables(self._engine)
                self._created = True
            self._watch = await self._check()
            self._checked = self._monotonic()
            return self._watch

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(self._check_s)
            try:
                await self.watch()
            except Exception:  # the database: the next check tries again; decisions meanwhile are blind
                log.exception("change_gate_check_failed", gate=type(self).__name__)
                self._watch = None

    async def _check(self) -> Watch | None:
        now = self._clock()
        for dataset in self._datasets:
            if not await self._check_one(dataset, now):
                return None
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(self.watch_table))).all()
        mine = [row for row in rows if row.dataset in self._datasets]
        if len(mine) != len(self._datasets):
            return None
        await self._prune(now)
        return Watch(
            since=max(utc_aware(row.watched_since) for row in mine),
            checked_at=min(utc_aware(row.checked_at) for row in mine),
            position=max(utc_aware(row.published_at) for row in mine),
        )

    async def _check_one(self, dataset: str, now: datetime) -> bool:
        """Read what `dataset` lists since the last check and `_record` it; False when that failed."""
        raise NotImplementedError

    async def _previous(self, dataset: str) -> tuple[datetime, datetime, datetime] | None:
        """`dataset`'s watch row: (position, last successful check, watched since), or None."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(self.watch_table).where(self.watch_table.c.dataset == dataset)
                )
            ).first()
        if row is None:
            return None
        return utc_aware(row.published_at), utc_aware(row.checked_at), utc_aware(row.watched_since)

    async def _record(
        self,
        dataset: str,
        dots: Iterable[str],
        published: datetime,
        now: datetime,
        since: datetime,
        **extra: object,
    ) -> None:
        """A successful check of `dataset` at `now`: the DOTs it listed at position `published` (and the
        gate's `extra` columns of its watch row).
        """
        async with self._engine.begin() as connection:
            if listed := sorted(set(dots)):
                insert = upsert_insert(connection.dialect, self.dot_table)
                await connection.execute(
                    insert.on_conflict_do_nothing(),
                    [{"dot": dot, "published_at": published, "dataset": dataset} for dot in listed],
                )
            values = {"published_at": published, "checked_at": now, "watched_since": since, **extra}
            statement = upsert_insert(connection.dialect, self.watch_table).values(dataset=dataset, **values)
            await connection.execute(statement.on_conflict_do_update(index_elements=["dataset"], set_=values))

    async def _listed(self, dot: str, position: datetime) -> bool:
        key = gate_dot(dot) or dot
        table = self.dot_table
        query = select(
            exists().where(
                table.c.dot == key, table.c.published_at > position, table.c.dataset.in_(self._datasets)
            )
        )
        async with self._engine.connect() as connection:
            return bool((await connection.execute(query)).scalar())

    async def _prune(self, now: datetime) -> None:
        cutoff = now - self._full_refresh - RETENTION_MARGIN
        async with self._engine.begin() as connection:
            await connection.execute(delete(self.dot_table).where(self.dot_table.c.published_at < cutoff))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
