"""The daily difference gate: FMCSA's Motus daily difference datasets on DataHub, read once per
publication, decide which carriers need a QCMobile fetch (pure rule: `domain.difference.fetch_reason`).

At most once per `check_s` (and in the background at that pace, so the watch does not depend on requests
arriving; a decision does not wait for a check under way, it takes the last one's result), per dataset:
its metadata (`/api/views/{id}.json`, `rowsUpdatedAt`); when a publication newer than the one read has
come, the whole dataset, `$select=usdot_number` in pages of `PAGE_SIZE` (at most `MAX_PAGES`), then the
metadata again (a publication replacing it meanwhile makes the read count for nothing: tried again at the
next check). The DOTs it lists go to `authority_difference_dot` with the
publication's time; `authority_difference_watch` keeps per dataset the publication read, the last
successful check and since when the watch has been unbroken. Both tables are in the source's database,
so replicas share them; rows older than the full-refresh period (plus a day) are pruned.

Every call goes through the source's DataHub `UpstreamClient` (its pace, app token, retries and scrubbed
failures). Any failure leaves the tables as they were and makes the gate blind until a check succeeds:
every carrier is then fetched.

When a watch (re)starts (first check, or a check more than `max_gap` after the previous one) the current
publication is not read: every carrier fetched before that moment is fetched anyway (`not_watched`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import stamina
import structlog
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, exists, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.database import upsert_insert, utc_aware
from fmcsa_source_authority.domain.difference import (
    FetchReason,
    Watch,
    difference_dot,
    fetch_reason,
    parse_difference_page,
    watch_since,
)
from fmcsa_source_authority.domain.parse import Said, _json
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.marks import FetchMark
from fmcsa_source_kit.publication import rows_updated_at
from fmcsa_source_kit.upstream import Answer, UpstreamClient

log = structlog.get_logger(__name__)

PAGE_SIZE = 10_000
"""Rows per page of a daily difference read (`$limit`; Socrata allows 50,000)."""
MAX_PAGES = 100
"""Pages read before a publication counts as unreadable (a million rows: not a day's changes)."""
RETENTION_MARGIN = timedelta(days=1)

_metadata = MetaData()
watch_table = Table(
    "authority_difference_watch",
    _metadata,
    Column("dataset", String(9), primary_key=True),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("watched_since", DateTime(timezone=True), nullable=False),
)
dot_table = Table(
    "authority_difference_dot",
    _metadata,
    Column("dot", String(8), primary_key=True),
    Column("published_at", DateTime(timezone=True), primary_key=True),
    Column("dataset", String(9), primary_key=True),
)


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


class DifferenceGate:
    """Reads the daily difference datasets and decides, per carrier, whether it needs a fetch."""

    def __init__(
        self,
        datahub: UpstreamClient,
        engine: AsyncEngine,
        *,
        datasets: Sequence[str],
        check_s: float,
        max_gap: timedelta,
        full_refresh: timedelta,
        retry_after_max_s: float,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._datahub = datahub
        self._engine = engine
        self._datasets = tuple(datasets)
        self._check_s = check_s
        self._max_gap = max_gap
        self._full_refresh = full_refresh
        self._retry_after_max_s = retry_after_max_s
        self._clock = clock
        self._monotonic = monotonic
        self._checked: float | None = None
        self._watch: Watch | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._created = False

    @staticmethod
    async def create_tables(engine: AsyncEngine) -> None:
        """The gate's tables, if missing; replicas racing on CREATE TABLE (PostgreSQL) try again."""
        async for attempt in stamina.retry_context(
            on=DBAPIError, attempts=3, wait_initial=0.05, wait_max=0.5
        ):
            with attempt:
                async with engine.begin() as connection:
                    await connection.run_sync(_metadata.create_all)

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
        log.debug("difference_gate", dot=dot, reason=reason)
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
                log.exception("difference_gate_check_failed")
                self._watch = None

    async def _check(self) -> Watch | None:
        now = self._clock()
        for dataset in self._datasets:
            if not await self._check_one(dataset, now):
                return None
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(watch_table))).all()
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
        published = await self._published(dataset)
        if isinstance(published, Failure):
            log.warning(
                "difference_check_failed", dataset=dataset, error=published.kind, message=published.message
            )
            return False
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(watch_table).where(watch_table.c.dataset == dataset))
            ).first()
        previous_check = None if row is None else utc_aware(row.checked_at)
        since = watch_since(
            previous_check, None if row is None else utc_aware(row.watched_since), now, self._max_gap
        )
        dots: set[str] = set()
        if since != now and row is not None and published > utc_aware(row.published_at):
            read = await self._read(dataset)
            if isinstance(read, Failure):
                log.warning("difference_read_failed", dataset=dataset, error=read.kind, message=read.message)
                return False
            again = await self._published(dataset)
            if again != published:  # replaced while read (or the check failed): read it at the next check
                log.info("difference_replaced_while_read", dataset=dataset)
                return False
            dots = read
            log.info(
                "difference_read", dataset=dataset, published_at=published.isoformat(), carriers=len(dots)
            )
        async with self._engine.begin() as connection:
            if dots:
                insert = upsert_insert(connection.dialect, dot_table)
                await connection.execute(
                    insert.on_conflict_do_nothing(),
                    [{"dot": dot, "published_at": published, "dataset": dataset} for dot in sorted(dots)],
                )
            values = {"published_at": published, "checked_at": now, "watched_since": since}
            statement = upsert_insert(connection.dialect, watch_table).values(dataset=dataset, **values)
            await connection.execute(statement.on_conflict_do_update(index_elements=["dataset"], set_=values))
        return True

    async def _published(self, dataset: str) -> datetime | Failure:
        read = _reader(parse_published, "metadata", self._retry_after_max_s)
        result = await self._datahub.get(f"api/views/{dataset}.json", read)
        assert isinstance(result, datetime | Failure)
        return result

    async def _read(self, dataset: str) -> set[str] | Failure:
        read = _reader(parse_difference_page, "daily difference", self._retry_after_max_s)
        found: set[str] = set()
        for page in range(MAX_PAGES):
            params = {
                "$select": "usdot_number",
                "$order": ":id",
                "$limit": str(PAGE_SIZE),
                "$offset": str(page * PAGE_SIZE),
            }
            result = await self._datahub.get(f"resource/{dataset}.json", read, params=params)
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
            message=f"DataHub served more than {MAX_PAGES * PAGE_SIZE} rows of daily difference {dataset}",
        )

    async def _listed(self, dot: str, position: datetime) -> bool:
        key = difference_dot(dot) or dot
        query = select(
            exists().where(
                dot_table.c.dot == key,
                dot_table.c.published_at > position,
                dot_table.c.dataset.in_(self._datasets),
            )
        )
        async with self._engine.connect() as connection:
            return bool((await connection.execute(query)).scalar())

    async def _prune(self, now: datetime) -> None:
        cutoff = now - self._full_refresh - RETENTION_MARGIN
        async with self._engine.begin() as connection:
            await connection.execute(delete(dot_table).where(dot_table.c.published_at < cutoff))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
