"""The projection's one writer: folds batches of stream messages into the status tables.

Guarantees:
- The applied stream position is read (under the write lock) and written in the same transaction as
  every row the batch changed (style.md 2.8): a crash anywhere loses the whole batch or nothing, and
  the next start resumes at position + 1. Messages at or below the position are skipped.
- A batch is refused (`Resync`) when the store is not where the caller believes: another writer
  advanced it, or a rebuilt store was swapped in. The caller re-reads `position()` and goes on.
- A batch touches only the rows its events name. They come from a bounded cache of rows this writer
  read or wrote (it is the only writer; any failure clears the cache), the rest from one query per
  table; they are folded in memory (`domain.fold`) and written back with multi-row upserts.
- The change feed and the history are written in the same transaction: a change row per event id
  (`INSERT ... ON CONFLICT (event_id) DO NOTHING` backs the fold's own de-duplication), a history
  point per key, which replaces the stored one only when its observation is newer: the SQL form of
  `domain.feed.newer` (history points are never loaded; the database keeps the newest).
- Poison (undecodable or impossible content) advances the position and is counted; the live
  projector dead-letters it before the commit, so a crash never loses a dead letter (its id, derived
  from the stream sequence, makes a repeat harmless).
- A data error never blocks the stream: when the database refuses a batch's write for a value
  (`fmcsa_runtime.database.is_data_error`: a NUL in text, a number out of range...), or the fold
  does (a time with no UTC value overflows), the batch is
  bisected: each half is folded and written in its own transaction, a half that fails again is split
  again, until the one event the database refuses is left; it is then written as poison (reason
  `store_refused`, the database's message as detail): dead-lettered, counted, the position moved past
  it. Store trouble (an outage, a lock) is not a data error and raises as before. A rebuild meets the
  same refusals and so folds the same rows.
- Risk changes (`domain.risk_changes`): the live store (`risk_outbox=True`, the projector's) writes each
  move of a carrier's risk light into `status_risk_outbox` in the batch's transaction, as the
  `CarrierDataChanged` to publish (`fmcsa_status.publisher` publishes and deletes it); a crash before
  the commit loses both, so the re-fold writes it again. A rebuild's store writes none (REPLAY).
- PostgreSQL: one batch is written while the next is folded (`apply` returns once the batch is handed
  to its writer task; the next `apply`, `flush` or `position` waits for that commit first). SQLite
  writes in place (see `fmcsa_status_view.database`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Index, String, Table
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.schema import CreateIndex

from fmcsa_events.consume import Delivered
from fmcsa_events.decoder import Undecodable
from fmcsa_events.envelope import event_id as derived_event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CarrierDataChanged,
    CompanyRegistered,
    CompanyRemoved,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    ViolationsListed,
)
from fmcsa_runtime.database import STORE_CHECK_TIMEOUT_S, data_error_reason, is_data_error
from fmcsa_status.domain.fold import Fact, Loaded, PairKey, fold, paged_requests, settle
from fmcsa_status.domain.risk_changes import risk_changes
from fmcsa_status.domain.state import Change, Company, DayCount, DayKey, Entry, Pair, Point, Totals
from fmcsa_status_view.binding import RowBinding, decoder
from fmcsa_status_view.codec import Codec, codec_for
from fmcsa_status_view.database import Database, Session, open_database
from fmcsa_status_view.location import Location
from fmcsa_status_view.rows import CarrierRow, ViolationPageRow, ViolationRow
from fmcsa_status_view.tables import (
    CARRIER,
    CHANGE,
    COMPANY,
    HISTORY,
    RISK_OUTBOX,
    SOURCE,
    SYNC_LOG,
    TABLES,
    TOTALS,
    VIOLATION,
    VIOLATION_PAGE,
    columns,
)

log = structlog.get_logger(__name__)

DeadLetter = Callable[[Delivered, str, str], Awaitable[None]]
"""`(message, reason, detail)`: publish one dead letter and return after its PubAck."""

Poison = tuple[Delivered, str, str]

_CHUNK = 900  # keys per IN (...) list, below every driver's parameter limit
STORE_REFUSED = "store_refused"
"""The poison reason of an event whose rows the database refused (a data error)."""

_POSITION = "SELECT seq FROM status_position WHERE id = 1"
_START = "INSERT INTO status_position (id, seq, events, rejected) VALUES (1, 0, 0, 0)"
_ADVANCE = "UPDATE status_position SET seq = ?, events = events + ?, rejected = rejected + ? WHERE id = 1"
_ADD_DAILY_HEAD = "INSERT INTO status_daily (day, source, succeeded, failed) VALUES "
_ADD_DAILY_TAIL = (
    " ON CONFLICT (day, source) DO UPDATE SET succeeded = status_daily.succeeded + excluded.succeeded,"
    " failed = status_daily.failed + excluded.failed"
)
_LATER = (
    "CASE WHEN status_totals.{c} IS NULL OR excluded.{c} > status_totals.{c}"
    " THEN excluded.{c} ELSE status_totals.{c} END"
)
_ADD_TOTALS_TAIL = " ON CONFLICT (scope) DO UPDATE SET " + ", ".join(
    [
        f"{c} = status_totals.{c} + excluded.{c}"
        for c in ("companies", "failing", "never_synced", "requests", "succeeded", "failed")
    ]
    + [f"{c} = {_LATER.format(c=c)}" for c in ("last_finished_at", "last_success_at")]
)
_POINT_COLUMNS = ("dot", "source", "subject", "as_of", "figures", "request_id", "observed_at")
_ADD_CHANGE_TAIL = " ON CONFLICT (event_id) DO NOTHING"
_ADD_RISK = (
    "INSERT INTO status_risk_outbox (event_id, position, ordinal, payload) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (event_id) DO NOTHING"
)
_PENDING_RISKS = (
    "SELECT event_id, position, ordinal, payload FROM status_risk_outbox ORDER BY position, ordinal"
)
_PUT_POINT_TAIL = (
    " ON CONFLICT (dot, source, subject, as_of) DO UPDATE SET figures = excluded.figures,"
    " request_id = excluded.request_id, observed_at = excluded.observed_at"
    " WHERE excluded.observed_at > status_history.observed_at OR (excluded.observed_at ="
    " status_history.observed_at AND excluded.request_id{c} > status_history.request_id{c})"
)  # `domain.feed.newer`: the newest observation (observed_at, then request id) of an as-of wins


@dataclass(frozen=True, slots=True)
class Applied:
    """A batch folded: the new position, the messages it covered and the ones refused as poison."""

    position: int
    events: int
    poison: tuple[Poison, ...]


@dataclass(frozen=True, slots=True)
class Resync:
    """Nothing folded: the store is at `position`, not where the caller believed; read from there."""

    position: int


@dataclass(frozen=True, slots=True)
class _Pending:
    """The batch whose write is in flight (PostgreSQL): what a data error in it needs to be bisected."""

    fresh: list[Delivered]
    believed: int
    dead_letter: DeadLetter | None


class _Refused(Exception):
    """The store was not at the position a batch was folded for."""

    def __init__(self, position: int) -> None:
        super().__init__(f"the store is at {position}")
        self.position = position


@dataclass(frozen=True, slots=True)
class _Batch:
    """One folded batch, ready to be written in one transaction."""

    believed: int
    position: int
    events: int
    entries: list[Entry]
    pairs: list[Pair]
    companies: list[Company]
    totals: list[Totals]
    daily: Mapping[DayKey, DayCount]
    poison: list[Poison]
    changes: list[Change]
    dropped_changes: frozenset[int]
    history: list[Point]
    carriers: list[CarrierRow]
    violations: Mapping[str, Sequence[ViolationRow]]
    added_violations: Sequence[ViolationRow]
    held_pages: Sequence[ViolationPageRow]
    released_pages: frozenset[str]
    risks: list[CarrierDataChanged]


@dataclass(frozen=True, slots=True)
class _Recount:
    """A batch that needs failures counted in the whole log: folded again inside its transaction."""

    believed: int
    fresh: list[Delivered]
    facts: list[Fact]
    origin: list[Delivered]
    loaded: Loaded
    poison: list[Poison]


class StatusStore:
    """The writer of the status tables at one location (see `fmcsa_status_view.location`)."""

    def __init__(
        self,
        location: Location,
        *,
        follow_pointer: bool,
        cache_rows: int = 50_000,
        risk_outbox: bool = False,
        bulk: bool = False,
    ) -> None:
        self._location = location
        self._bulk = bulk and location.sqlite and not follow_pointer
        self._risk_outbox = risk_outbox
        self.risks_waiting = asyncio.Event()
        self._sqlite_writes = asyncio.Lock()
        """Set after a commit that wrote a risk change into the outbox (the publisher waits on it)."""
        self._follow_pointer = follow_pointer and location.sqlite
        self._codec = codec_for("sqlite" if location.sqlite else "postgresql")
        self._db: Database | None = None
        self._reader: Database | None = None
        self._marker: tuple[int, int] | None = None
        codec = self._codec
        self._entries = RowBinding(SYNC_LOG, Entry, codec, ("request_id",))
        self._pairs = RowBinding(SOURCE, Pair, codec, ("dot", "source"))
        self._companies = RowBinding(COMPANY, Company, codec, ("dot",))
        self._totals = RowBinding(TOTALS, Totals, codec, ("scope",))
        self._changes = RowBinding(CHANGE, Change, codec, ("position",))
        self._history = RowBinding(HISTORY, Point, codec, ("dot", "source", "subject", "as_of"))
        self._carriers = RowBinding(CARRIER, CarrierRow, codec, ("dot",))
        self._violations = RowBinding(VIOLATION, ViolationRow, codec, ("dot", "seq"))
        self._pages = RowBinding(VIOLATION_PAGE, ViolationPageRow, codec, ("request_id", "first_seq"))
        assert self._history.columns == _POINT_COLUMNS, "_point_rows writes the columns in this order"
        self._add_change = self._changes.insert(1, _ADD_CHANGE_TAIL)
        self._put_point = self._history.insert(
            1, _PUT_POINT_TAIL.format(c="" if codec.sqlite else ' COLLATE "C"')
        )
        self._cache_rows = cache_rows
        self._cached_entries: dict[str, Entry] = {}
        self._cached_pairs: dict[PairKey, Pair] = {}
        self._cached_companies: dict[str, Company] = {}
        self._cached_changes: dict[str, Change] = {}  # by event id: changes this writer wrote
        self._absent_dots: set[str] = set()  # DOTs known to have no row yet
        # every held page of violation rows (a handful: a page waits for the outcome published after it);
        # None: read the table again at the next batch
        self._held_pages: dict[str, dict[int, ViolationPageRow]] | None = None
        self._writing: asyncio.Task[None] | None = None
        self._pending: _Pending | None = None
        self._folded_to: int | None = None
        self._in_place = False  # while bisecting: every write commits before the next fold
        self._refusals: dict[int, str] = {}  # stream sequence -> why the database refused its rows
        self._late_poison: list[Poison] = []  # refused in a write in flight; reported by the next apply

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        follow_pointer: bool = True,
        cache_rows: int = 50_000,
        risk_outbox: bool = False,
        bulk: bool = False,
    ) -> StatusStore:
        """Open the live store at `url` (creating its tables if missing). With `follow_pointer`
        (SQLite), every batch first checks whether a rebuilt store was swapped in and moves to it.
        With `risk_outbox` (the live projector's store only), batches write their risk changes into
        the outbox. With `bulk` (a new SQLite file a rebuild fills, no reader yet; ignored otherwise):
        the throwaway file's settings (`BULK_PRAGMAS`) and no secondary index the writer does not read,
        until `finish_bulk`.
        """
        store = cls(
            Location(url),
            follow_pointer=follow_pointer,
            cache_rows=cache_rows,
            risk_outbox=risk_outbox,
            bulk=bulk,
        )
        await store._open()
        return store

    @property
    def url(self) -> str:
        return self._location.url

    async def close(self) -> None:
        """Wait for the batch being written, then close."""
        try:
            await self.flush()
        finally:
            for db in (self._db, self._reader):
                if db is not None:
                    await db.dispose()
            self._db = self._reader = None

    async def flush(self) -> Resync | None:
        """Wait until every folded batch is committed; a `Resync` if the last one was refused.
        Raises what the write raised (store trouble); the cache is then cleared.
        """
        try:
            await self._written()
        except _Refused as refused:
            return Resync(refused.position)
        return None

    async def answers(self, *, timeout_s: float = STORE_CHECK_TIMEOUT_S) -> bool:
        """Whether the live store answers `SELECT 1` within `timeout_s` on the readers' connection (the
        write in flight is not waited for): the projector's readiness check.
        """
        try:
            async with asyncio.timeout(timeout_s):
                db = await self._current()  # reopens on a swapped-in store
                async with (self._reader or db).transaction() as session:
                    await session.scalar("SELECT 1")
        except Exception:  # any failure to reach the store means: not ready
            return False
        return True

    async def committed_position(self) -> int:
        """The position readers see now: read on the readers' connection, without waiting for the write
        in flight (which `position` does) nor for a lock on the position row.
        """
        db = await self._current()
        async with (self._reader or db).transaction() as session:
            return int(await session.scalar(_POSITION) or 0)

    async def position(self) -> int:
        """The last stream sequence committed to the live store (after the write in flight)."""
        with contextlib.suppress(_Refused):
            await self._written()
        db = await self._current()
        async with db.transaction() as session:
            return int(await session.scalar(_POSITION) or 0)

    async def apply(
        self, batch: Sequence[Delivered], *, believed: int, dead_letter: DeadLetter | None
    ) -> Applied | Resync:
        """Fold `batch` (stream order, after sequence `believed`) and write it.

        `believed` is the position the caller read from this store (or the last `Applied.position`).
        A `Resync` means the store is elsewhere (another writer, a swapped-in rebuild, a refused
        write): re-read `position()` and go on from there. Raises on store trouble (nothing after the
        last commit is kept). `dead_letter` is awaited for each poison message before the commit.
        REPLAY: a rebuild passes None, so dead letters are published once, by the live projector.
        """
        if self._swapped() or (self._folded_to is not None and believed != self._folded_to):
            await self.flush()
            return Resync(await self.position())  # position() moves to a swapped-in store
        fresh = [d for d in batch if d.seq > believed]
        if not fresh:
            return Applied(believed, 0, ())
        try:
            prepared = await self._fold(fresh, believed)
            try:
                if await self._written():  # the last batch was bisected: fold on what it left
                    prepared = await self._fold(fresh, believed)
            except _Refused as refused:
                return Resync(refused.position)
            db = await self._current()
            if isinstance(prepared, _Recount):  # the batch must see its own entries in the log
                written = await self._write_with_recount(db, prepared, dead_letter)
                if isinstance(written, Resync):
                    self._forget()
                    return written
                poison = list(written.poison)
            else:
                self._evict(prepared)
                poison = prepared.poison
                if db.sqlite or self._in_place:
                    await self._write(db, prepared, dead_letter)
                else:  # PostgreSQL works while the next batch is folded
                    self._writing = asyncio.create_task(self._write(db, prepared, dead_letter))
                    self._pending = _Pending(fresh, believed, dead_letter)
        except _Refused as refused:
            self._forget()
            return Resync(refused.position)
        except Exception as error:
            if not is_data_error(error):
                self._forget()
                raise
            try:  # the fold refused it: the write in flight first (its rows are only in the cache)
                await self._written()
            except _Refused as refused:
                self._forget()
                return Resync(refused.position)
            self._forget()
            bisected = await self._bisect(fresh, believed, dead_letter, error)
            if isinstance(bisected, Resync):
                return bisected
            poison = list(bisected.poison)
        except BaseException:
            self._forget()
            raise
        self._folded_to = fresh[-1].seq
        if self._late_poison and not self._in_place:
            poison, self._late_poison = self._late_poison + list(poison), []
        return Applied(fresh[-1].seq, len(fresh), tuple(poison))

    async def _bisect(
        self, fresh: list[Delivered], believed: int, dead_letter: DeadLetter | None, error: BaseException
    ) -> Applied | Resync:
        """The database refused a value of `fresh` (stream order, after `believed`): write each half in
        its own transaction, split again a half that fails again, and write the one event left as
        poison (`store_refused`). Returns what the halves did together; raises when even that fails.
        """
        if len(fresh) == 1 and fresh[0].seq in self._refusals:
            raise error  # its write as poison failed too: see below
        outer, self._in_place = self._in_place, True
        try:
            if len(fresh) == 1:
                reason = data_error_reason(error)
                log.warning("status_store_refused", seq=fresh[0].seq, subject=fresh[0].subject, reason=reason)
                self._refusals[fresh[0].seq] = reason
                try:
                    return await self.apply(fresh, believed=believed, dead_letter=dead_letter)
                except Exception as again:  # not even the position moves: store trouble after all
                    raise RuntimeError(f"event {fresh[0].seq} is refused even as poison: {again!r}") from None
            middle = len(fresh) // 2
            position, events, poison = believed, 0, list[Poison]()
            for half in (fresh[:middle], fresh[middle:]):
                result = await self.apply(half, believed=position, dead_letter=dead_letter)
                if isinstance(result, Resync):
                    return result
                position, events = result.position, events + result.events
                poison += result.poison
            return Applied(position, events, tuple(poison))
        finally:
            self._in_place = outer
            if len(fresh) == 1:
                self._refusals.pop(fresh[0].seq, None)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[tuple[Session, int]]:
        """Hold the store's write lock (no batch commits meanwhile) and yield the open transaction
        and the applied position. Readers go on; `shut_out_readers` then locks them out too, for a
        schema swap. PostgreSQL: a lock not granted within 200 ms raises (see `is_lock_timeout`)
        rather than risk a deadlock with a reader midway through its snapshot: try again.
        """
        await self.flush()
        self._forget()
        db = await self._current()
        async with db.transaction() as session:
            if not db.sqlite:
                await session.execute("SET LOCAL lock_timeout = '200ms'")
                # EXCLUSIVE: the projector's `SELECT ... FOR UPDATE` of its position waits; plain reads do not
                await session.execute("LOCK TABLE status_position IN EXCLUSIVE MODE")
            yield session, await self._lock_position(session, db)

    async def shut_out_readers(self, session: Session) -> None:
        """Inside `exclusive`: lock every table against readers too (PostgreSQL; SQLite swaps a pointer
        file and needs no lock). Take it only once nothing else is to commit before the swap: a reader
        waiting here already holds its REPEATABLE READ snapshot (PostgreSQL takes it before the lock),
        and after the swap it reads the new tables as of that snapshot.
        """
        assert self._db is not None, "exclusive() opened the store"
        if not self._db.sqlite:
            names = ", ".join(table.name for table in TABLES)
            await session.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")

    async def finish_bulk(self) -> None:
        """A `bulk` store becomes an ordinary one (a no-op otherwise): the batch in flight committed,
        the secondary indexes built, the file fsynced and reopened with the live settings (WAL,
        `synchronous=NORMAL`), so it can be swapped in. The cache is dropped with the old connections.
        """
        if not self._bulk:
            return
        await self.flush()
        assert self._db is not None, "connect() opens the store"
        dialect = sqlite_dialect()
        async with self._db.transaction() as session:
            for index in _bulk_indexes():
                await session.execute(str(CreateIndex(index).compile(dialect=dialect)))
        await self._db.dispose()
        self._db = self._reader = None
        _fsync(self._location.base_path)  # every commit so far skipped it (synchronous=OFF)
        self._bulk = False
        await self._open()

    async def dump(self, table: Table) -> AsyncIterator[dict[str, Any]]:
        """Every row of one table, after waiting for the write in flight; see `dump_rows`."""
        with contextlib.suppress(_Refused):
            await self._written()
        db = await self._current()
        async with db.transaction() as session:
            async for row in dump_rows(session, table, self._codec):
                yield row

    # --- plumbing ---------------------------------------------------------------------------

    async def _open(self) -> None:
        self._forget()
        url = self._location.live_url() if self._follow_pointer else self._location.url
        self._marker = self._location.marker() if self._follow_pointer else None
        db = open_database(url, writer=True, bulk=self._bulk)
        await db.create_tables((*TABLES, RISK_OUTBOX))
        async with db.transaction() as session:
            if await session.scalar("SELECT COUNT(*) FROM status_position WHERE id = 1") == 0:
                await session.execute(_START)
            if self._bulk:  # built once at the end (`finish_bulk`), not row by row
                for index in _bulk_indexes():
                    await session.execute(f"DROP INDEX IF EXISTS {index.name}")
        for old in (self._db, self._reader):
            if old is not None:
                await old.dispose()
        self._db = db
        # PostgreSQL: loads read committed rows on their own connection, beside a write in flight.
        self._reader = db if db.sqlite else open_database(url, writer=False)

    async def _current(self) -> Database:
        if self._swapped():
            with contextlib.suppress(_Refused):
                await self._written()
            await self._open()  # the swapped-in store; its position decides where folding resumes
        assert self._db is not None, "connect() opens the store"
        return self._db

    def _swapped(self) -> bool:
        """A rebuilt store was swapped in (SQLite: the pointer changed)."""
        return self._follow_pointer and self._location.marker() != self._marker

    def _forget(self) -> None:
        """Drop everything not known to be committed: the cache and the folded position."""
        self._cached_entries.clear()
        self._cached_pairs.clear()
        self._cached_companies.clear()
        self._cached_changes.clear()
        self._absent_dots.clear()
        self._held_pages = None
        self._folded_to = None

    async def _written(self) -> bool:
        """Wait for the write in flight; on failure forget the cache and raise, but a data error is
        bisected (see `_bisect`): True then, the store is past that batch and the cache was refilled.
        """
        writing, self._writing = self._writing, None
        pending, self._pending = self._pending, None
        if writing is None:
            return False
        try:
            await writing
        except Exception as error:
            self._forget()
            if pending is None or not is_data_error(error):
                raise
            bisected = await self._bisect(pending.fresh, pending.believed, pending.dead_letter, error)
            if isinstance(bisected, Resync):
                raise _Refused(bisected.position) from None
            self._late_poison += bisected.poison
            return True
        except BaseException:
            self._forget()
            raise
        return False

    async def _lock_position(self, session: Session, db: Database) -> int:
        # SQLite: BEGIN IMMEDIATE already holds the write lock
        return int(await session.scalar(_POSITION if db.sqlite else f"{_POSITION} FOR UPDATE") or 0)

    async def _fold(self, fresh: list[Delivered], believed: int) -> _Batch | _Recount:
        facts: list[Fact] = []
        origin: list[Delivered] = []
        poison: list[Poison] = []
        for delivered in fresh:
            decoded = delivered.decoded
            if isinstance(decoded, Undecodable):
                poison.append((delivered, decoded.reason.value, decoded.detail))
            elif delivered.seq in self._refusals:  # bisected down to this event: it is poison now
                poison.append((delivered, STORE_REFUSED, self._refusals[delivered.seq]))
            else:
                envelope = decoded.envelope
                facts.append(Fact(decoded.event, envelope.event_id, envelope.occurred_at, delivered.seq))
                origin.append(delivered)
        loaded = await self._load(facts)
        folded = fold(loaded, facts)
        if folded.recount:
            return _Recount(believed, fresh, facts, origin, loaded, poison)
        settled = settle(loaded, folded, {})
        # before `_remember`: `loaded.pairs` is the cache itself, and the risk changes read what it held
        risks = self._risks_of(loaded, settled.pairs, settled.carriers)
        self._remember(folded.entries.values(), settled.pairs.values(), settled.companies.values())
        self._remember_changes(folded.changes.values())
        self._remember_pages(settled.held_pages, settled.released_pages)
        poison += [(origin[r.index], r.reason, r.detail) for r in folded.rejected]
        poison.sort(key=_by_seq)
        return _Batch(
            believed=believed,
            position=fresh[-1].seq,
            events=len(fresh),
            entries=list(folded.entries.values()),
            pairs=list(settled.pairs.values()),
            companies=list(settled.companies.values()),
            totals=list(settled.totals.values()),
            daily=folded.daily,
            poison=poison,
            changes=list(folded.changes.values()),
            dropped_changes=folded.dropped_changes,
            history=list(folded.history.values()),
            carriers=list(settled.carriers.values()),
            violations=settled.violations,
            added_violations=settled.added_violations,
            held_pages=settled.held_pages,
            released_pages=settled.released_pages,
            risks=risks,
        )

    async def _write(self, db: Database, batch: _Batch, dead_letter: DeadLetter | None) -> None:
        """One transaction: position check, rows, dead letters, position."""
        async with self._sqlite_write(db), db.transaction() as session:
            position = await self._lock_position(session, db)
            if position != batch.believed or self._swapped():
                raise _Refused(position)
            await self._upsert(session, self._entries, batch.entries)
            await self._upsert(session, self._pairs, batch.pairs)
            await self._upsert(session, self._companies, batch.companies)
            await self._add_totals(session, batch.totals)
            await self._add_daily(session, batch.daily)
            await self._put_feed(session, batch.changes, batch.dropped_changes, batch.history)
            await self._put_records(session, batch.carriers, batch.violations)
            await self._put_pages(session, batch.added_violations, batch.held_pages, batch.released_pages)
            await self._put_risks(session, batch.position, batch.risks)
            if dead_letter is not None:
                for delivered, reason, detail in batch.poison:
                    await dead_letter(delivered, reason, detail)
            await session.execute(_ADVANCE, (batch.position, batch.events, len(batch.poison)))
        if batch.risks:
            self.risks_waiting.set()

    async def _write_with_recount(
        self, db: Database, batch: _Recount, dead_letter: DeadLetter | None
    ) -> Applied | Resync:
        """The rare batch with a late success between failures: fold, write its entries, count the
        failures in the whole log, settle and write the rest, all in one transaction.
        """
        fresh, poison = batch.fresh, list(batch.poison)
        async with self._sqlite_write(db), db.transaction() as session:
            position = await self._lock_position(session, db)
            if position != batch.believed or self._swapped():
                return Resync(position)
            folded = fold(batch.loaded, batch.facts)
            await self._upsert(session, self._entries, folded.entries.values())
            recounted = {key: await self._recount(session, folded.pairs[key]) for key in folded.recount}
            settled = settle(batch.loaded, folded, recounted)
            await self._upsert(session, self._pairs, settled.pairs.values())
            await self._upsert(session, self._companies, settled.companies.values())
            await self._add_totals(session, settled.totals.values())
            await self._add_daily(session, folded.daily)
            await self._put_feed(
                session, folded.changes.values(), folded.dropped_changes, folded.history.values()
            )
            await self._put_records(session, settled.carriers.values(), settled.violations)
            await self._put_pages(
                session, settled.added_violations, settled.held_pages, settled.released_pages
            )
            risks = self._risks_of(batch.loaded, settled.pairs, settled.carriers)
            await self._put_risks(session, fresh[-1].seq, risks)
            poison += [(batch.origin[r.index], r.reason, r.detail) for r in folded.rejected]
            poison.sort(key=_by_seq)
            if dead_letter is not None:
                for delivered, reason, detail in poison:
                    await dead_letter(delivered, reason, detail)
            await session.execute(_ADVANCE, (fresh[-1].seq, len(fresh), len(poison)))
        if risks:
            self.risks_waiting.set()
        self._remember(folded.entries.values(), settled.pairs.values(), settled.companies.values())
        self._remember_changes(folded.changes.values())
        self._remember_pages(settled.held_pages, settled.released_pages)
        return Applied(fresh[-1].seq, len(fresh), tuple(poison))

    async def _load(self, facts: Sequence[Fact]) -> Loaded:
        """The rows the facts name: from the cache, the rest from the database (committed rows; a
        row written by the batch in flight is always in the cache).
        """
        request_ids: set[str] = set()
        dots: set[str] = set()
        change_ids: set[str] = set()
        for fact in facts:
            event = fact.event
            if isinstance(event, SyncRequested | SourceSynced | SourceFailed):
                request_ids.add(str(event.request_id))
                dots.add(event.dot)
            elif isinstance(event, SyncAttemptFailed):  # its sync-log row only: no pair or company changes
                request_ids.add(str(event.request_id))
            elif isinstance(event, ViolationsListed):  # is its outcome applied, and still the newest?
                request_ids.add(str(event.request_id))
                dots.add(event.dot)
            elif isinstance(event, CompanyRegistered | CompanyRemoved):
                dots.add(event.dot)
            elif isinstance(event, CarrierDataChanged):
                change_ids.add(derived_event_id(event))
        changes = {i: c for i in change_ids if (c := self._cached_changes.get(i)) is not None}
        missing_changes = sorted(i for i in change_ids if i not in changes)
        if missing_changes:  # rare (a batch with changes not written by this writer): not cached
            assert self._reader is not None, "connect() opens the store"
            async with self._reader.transaction() as session:
                for change in await self._select(session, self._changes, "event_id", missing_changes):
                    changes[change.event_id] = change
        entries, pairs, companies = self._cached_entries, self._cached_pairs, self._cached_companies
        absent = self._absent_dots
        missing_ids = sorted(r for r in request_ids if r not in entries)
        missing_dots = sorted(int(d) for d in dots if d not in companies and d not in absent)
        if missing_ids or missing_dots:
            assert self._reader is not None, "connect() opens the store"
            async with self._reader.transaction() as session:
                for entry in await self._select(session, self._entries, "request_id", missing_ids):
                    entries[entry.request_id] = entry
                for pair in await self._select(session, self._pairs, "dot", missing_dots):
                    pairs.setdefault((pair.dot, pair.source), pair)
                for company in await self._select(session, self._companies, "dot", missing_dots):
                    companies.setdefault(company.dot, company)
            absent.update(str(d) for d in missing_dots if str(d) not in companies)
        held = await self._held(paged_requests(facts))
        # The cache itself is the view the fold reads (it looks up only the keys it needs and never
        # changes what it is given); rows the batch creates are remembered after it.
        return Loaded(entries=entries, pairs=pairs, companies=companies, changes=changes, pages=held)

    async def _held(self, wanted: set[str]) -> dict[str, list[ViolationPageRow]]:
        """The held pages of the `wanted` request ids (the table is read once, then kept in memory)."""
        if not wanted:
            return {}
        if self._held_pages is None:
            assert self._reader is not None, "connect() opens the store"
            mirror: dict[str, dict[int, ViolationPageRow]] = {}
            async with self._reader.transaction() as session:
                for row in await session.fetch(self._pages.select):
                    page: ViolationPageRow = self._pages.decode(row)
                    mirror.setdefault(page.request_id, {})[page.first_seq] = page
            self._held_pages = mirror
        return {r: [pages[o] for o in sorted(pages)] for r in wanted if (pages := self._held_pages.get(r))}

    def _remember_pages(self, held: Sequence[ViolationPageRow], released: frozenset[str]) -> None:
        """Keep the held-pages mirror what the table holds once the batch is written."""
        if self._held_pages is None:
            return  # read again at the next batch that needs it
        for request_id in released:
            self._held_pages.pop(request_id, None)
        for page in held:
            self._held_pages.setdefault(page.request_id, {})[page.first_seq] = page

    def _remember(
        self, entries: Iterable[Entry], pairs: Iterable[Pair], companies: Iterable[Company]
    ) -> None:
        """Keep the rows a batch produced (newest last, so eviction drops the oldest)."""
        for entry in entries:
            self._cached_entries.pop(entry.request_id, None)
            self._cached_entries[entry.request_id] = entry
        for pair in pairs:
            self._cached_pairs.pop((pair.dot, pair.source), None)
            self._cached_pairs[(pair.dot, pair.source)] = pair
            # Its company becomes the newest too: eviction drops pairs with their company, and a pair
            # whose write is in flight must stay cached (the database does not have it yet).
            held = self._cached_companies.pop(pair.dot, None)
            if held is not None:
                self._cached_companies[pair.dot] = held
        for company in companies:
            self._cached_companies.pop(company.dot, None)
            self._cached_companies[company.dot] = company
            self._absent_dots.discard(company.dot)

    def _remember_changes(self, changes: Iterable[Change]) -> None:
        """Keep the feed rows a batch wrote, so the next batch (folded while this one is written)
        knows them; a replaced row goes with its event id.
        """
        for change in changes:
            self._cached_changes.pop(change.event_id, None)
            self._cached_changes[change.event_id] = change

    def _evict(self, batch: _Batch) -> None:
        """Trim the cache to its bound; called when no write is in flight, so every row but this
        batch's own (the newest, kept) is committed and can be read back from the database.
        """
        _trim(self._cached_entries, max(self._cache_rows, 4 * len(batch.entries)))
        _trim(self._cached_changes, max(self._cache_rows, 4 * len(batch.changes)))
        if len(self._absent_dots) > self._cache_rows:
            self._absent_dots.clear()
        # A cached company means "all its pairs are cached": drop pairs only with their company, and
        # never the companies of this batch's rows (the newest; the bound leaves room for all of them).
        dots = {p.dot for p in batch.pairs} | {c.dot for c in batch.companies}
        while len(self._cached_companies) > max(self._cache_rows, 4 * len(dots)):
            dot = next(iter(self._cached_companies))
            del self._cached_companies[dot]
            for source in SourceKey:
                self._cached_pairs.pop((dot, source), None)

    async def _select(self, session: Session, rows: RowBinding, column: str, keys: list[Any]) -> list[Any]:
        found: list[Any] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = tuple(keys[start : start + _CHUNK])
            sql = f"{rows.select} WHERE {column} IN ({', '.join('?' * len(chunk))})"
            found.extend(rows.decode(row) for row in await session.fetch(sql, chunk))
        return found

    async def _upsert(self, session: Session, rows: RowBinding, values: Iterable[Any]) -> None:
        """One prepared statement for every row (the driver's executemany)."""
        encoded = [rows.encode(v) for v in values]
        if encoded:
            await session.execute_many(rows.upsert, encoded)

    async def _recount(self, session: Session, pair: Pair) -> int:
        """Failed, complete requests of the pair newer than its newest success, in the whole log."""
        sql = (
            "SELECT COUNT(*) FROM status_sync_log WHERE dot = ? AND source = ? AND status = 'failed'"
            " AND requested_at IS NOT NULL AND finished_at IS NOT NULL"
        )
        params: list[Any] = [int(pair.dot), pair.source.value]
        success = pair.success_key
        if success is not None:
            sql += " AND (requested_at > ? OR (requested_at = ? AND request_id > ?))"
            at = self._codec.time_out(success[0])
            params += [at, at, success[1]]
        return int(await session.scalar(sql, params) or 0)

    async def _put_feed(
        self, session: Session, changes: Iterable[Change], dropped: frozenset[int], points: Iterable[Point]
    ) -> None:
        """The batch's change rows (a replaced one deleted first) and its history points."""
        if dropped:
            marks = ", ".join("?" * len(dropped))
            await session.execute(f"DELETE FROM status_change WHERE position IN ({marks})", sorted(dropped))
        rows = [self._changes.encode(c) for c in changes]
        if rows:
            await session.execute_many(self._add_change, rows)
        rows = self._point_rows(points)
        if rows:
            await session.execute_many(self._put_point, rows)

    async def _put_records(
        self,
        session: Session,
        carriers: Iterable[CarrierRow],
        violations: Mapping[str, Sequence[ViolationRow]],
    ) -> None:
        """The carrier records derived again, and the violation rows of each DOT in `violations`, replaced
        as a whole (its old rows deleted first).
        """
        await self._upsert(session, self._carriers, carriers)
        dots = sorted(int(dot) for dot in violations)
        for start in range(0, len(dots), _CHUNK):
            chunk = dots[start : start + _CHUNK]
            await session.execute(
                f"DELETE FROM status_violation WHERE dot IN ({', '.join('?' * len(chunk))})", chunk
            )
        rows = [self._violations.encode(row) for dot in violations for row in violations[dot]]
        if rows:
            await session.execute_many(self._violations.insert(1, ""), rows)

    async def _put_pages(
        self,
        session: Session,
        added: Sequence[ViolationRow],
        held: Sequence[ViolationPageRow],
        released: frozenset[str],
    ) -> None:
        """Rows of pages folded after their outcome, pages to hold, and held pages released."""
        await self._upsert(session, self._violations, added)
        ids = sorted(released)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            await session.execute(
                f"DELETE FROM status_violation_page WHERE request_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        await self._upsert(session, self._pages, held)

    def _risks_of(
        self, loaded: Loaded, pairs: Mapping[PairKey, Pair], carriers: Mapping[str, CarrierRow]
    ) -> list[CarrierDataChanged]:
        """The batch's risk changes, for the live store's outbox only (REPLAY: a rebuild writes none)."""
        if not self._risk_outbox or not carriers:
            return []
        return risk_changes(loaded.pairs, pairs, carriers)

    async def _put_risks(self, session: Session, position: int, risks: Sequence[CarrierDataChanged]) -> None:
        rows = [
            (derived_event_id(risk), position, ordinal, risk.model_dump_json())
            for ordinal, risk in enumerate(risks)
        ]
        if rows:
            await session.execute_many(_ADD_RISK, rows)

    async def pending_risks(self) -> list[tuple[str, CarrierDataChanged]]:
        """The outbox's risk changes not yet published, in stream order, with their event ids. Reads the
        store open now: only the projector moves to a swapped-in store (`_current`), so the publisher
        never reopens under a batch in hand; the swap carried the unsent rows over.
        """
        assert self._reader is not None, "connect() opens the store"
        async with self._reader.transaction() as session:
            rows = await session.fetch(_PENDING_RISKS)
        return [(str(r[0]), CarrierDataChanged.model_validate_json(r[3])) for r in rows]

    async def risk_published(self, event_id: str) -> None:
        """Remove one published risk change from the outbox (of the store open now, as `pending_risks`)."""
        db = self._db
        assert db is not None, "connect() opens the store"
        async with self._sqlite_write(db), db.transaction() as session:
            await session.execute("DELETE FROM status_risk_outbox WHERE event_id = ?", (event_id,))

    def _sqlite_write(self, db: Database) -> contextlib.AbstractAsyncContextManager[object]:
        """SQLite: one write transaction of this process at a time. A batch's transaction may await a
        dead letter's PubAck; the publisher's delete must wait on the loop for it, not block the loop in
        SQLite's busy wait (the standard driver runs in the loop's thread). PostgreSQL: no wait.
        """
        return self._sqlite_writes if db.sqlite else contextlib.nullcontext()

    async def outbox_rows(self, session: Session) -> list[tuple[Any, ...]]:
        """Inside `exclusive`: the outbox as it is (a rebuild carries it into the store it swaps in)."""
        return list(await session.fetch(_PENDING_RISKS))

    async def adopt_outbox(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add the live store's outbox rows (from `outbox_rows`) to this store's."""
        if rows:
            db = await self._current()
            async with db.transaction() as session:
                await session.execute_many(_ADD_RISK, rows)

    def _point_rows(self, points: Iterable[Point]) -> list[tuple[Any, ...]]:
        """History rows in `HISTORY` column order. The points of one outcome share their two times:
        each is encoded once (a csa success has a point per BASIC; this is the fold's hot path).
        """
        codec, memo = self._codec, dict[datetime, Any]()

        def time(moment: datetime) -> Any:
            encoded = memo.get(moment)
            if encoded is None:
                encoded = memo[moment] = codec.time_out(moment)
            return encoded

        return [
            (int(p.dot), p.source, p.subject, time(p.as_of), _figures_json(p.figures), p.request_id,
             time(p.observed_at))
            for p in points
        ]  # fmt: skip

    async def _add_totals(self, session: Session, deltas: Iterable[Totals]) -> None:
        rows = [self._totals.encode(d) for d in deltas]  # at most one per scope: a handful
        if rows:
            statement = self._totals.insert(len(rows), _ADD_TOTALS_TAIL)
            await session.execute(statement, tuple(v for row in rows for v in row))

    async def _add_daily(self, session: Session, daily: Mapping[DayKey, DayCount]) -> None:
        if daily:
            values = ", ".join(["(?, ?, ?, ?)"] * len(daily))
            params = tuple(
                v for (day, source), c in daily.items() for v in (day, source, c.succeeded, c.failed)
            )
            await session.execute(_ADD_DAILY_HEAD + values + _ADD_DAILY_TAIL, params)


async def dump_rows(session: Session, table: Table, codec: Codec) -> AsyncIterator[dict[str, Any]]:
    """Every row of one table in primary-key order (DOT numerically, text by code point), decoded as
    the fold keeps values (DOT as text, aware UTC times, parsed JSON). Totals rows that are all zero
    are left out: increments that cancel out leave such a row in some batchings and not in others.
    """
    by_name = {c.name: c for c in table.columns}
    names = columns(table)
    readers = [decoder(by_name[n], codec) or _as_is for n in names]
    collate = "" if codec.sqlite else ' COLLATE "C"'
    order = ", ".join(
        f"{c.name}{collate}" if isinstance(c.type, String) else c.name for c in table.primary_key.columns
    )
    async for row in session.stream(f"SELECT {', '.join(names)} FROM {table.name} ORDER BY {order}"):
        decoded = {n: read(v) for n, read, v in zip(names, readers, row, strict=True)}
        if table is TOTALS and not any(v for k, v in decoded.items() if k != "scope"):
            continue
        yield decoded


def is_lock_timeout(error: BaseException) -> bool:
    """PostgreSQL's lock_not_available (a `lock_timeout` ran out)."""
    orig = getattr(error, "orig", error)
    return getattr(orig, "sqlstate", None) == "55P03" or "lock timeout" in str(orig).lower()


def primary_key(table: Table, row: dict[str, Any]) -> tuple[Any, ...]:
    """A row's key, comparable in `dump_rows` order."""
    return tuple(int(row[c.name]) if c.name == "dot" else row[c.name] for c in table.primary_key.columns)


_WRITER_READS = frozenset({"ix_status_sync_log_dot"})
"""Secondary indexes the writer's own statements use (`_recount`): kept during a bulk load."""


def _bulk_indexes() -> list[Index]:
    """The secondary indexes a bulk load builds at its end."""
    return [i for t in TABLES for i in sorted(t.indexes, key=_name) if i.name not in _WRITER_READS]


def _name(index: Index) -> str:
    return str(index.name)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _figures_json(figures: Mapping[str, float | None]) -> str:
    """A point's figures as JSON text, written directly (a few times faster than the encoder): the
    names are the fold's own identifiers and the values finite floats or None, each its own JSON.
    """
    parts = [f'"{k}":{"null" if v is None else repr(v)}' for k, v in figures.items()]
    return "{" + ",".join(parts) + "}"


def _by_seq(poison: Poison) -> int:
    return poison[0].seq


def _trim(cache: dict[Any, Any], limit: int) -> None:
    while len(cache) > limit:
        del cache[next(iter(cache))]


def _as_is(value: Any) -> Any:
    return value
