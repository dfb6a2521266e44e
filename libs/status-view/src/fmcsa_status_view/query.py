"""The read side of the status projection: the only queries the gateway runs on it.

`StatusView` never writes. It follows the live store (see `location`): before each query it checks
whether a rebuilt store was swapped in and, if so, reopens on it; queries already running finish on
the store they started on. Each query reads one snapshot. Lists are keyset-paginated: pass the
`next_cursor` of a page back as `cursor`; a cursor is opaque text, and a malformed one raises
`InvalidCursor`. A store the projector has not created yet reads as empty.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from fmcsa_events.identifiers import SourceKey, parse_dot, parse_source
from fmcsa_events.models import ChangeKind, Trigger
from fmcsa_events.text import has_control_characters
from fmcsa_status_view.binding import RowBinding
from fmcsa_status_view.codec import Codec, codec_for
from fmcsa_status_view.database import Database, Session, open_database
from fmcsa_status_view.gaps import MONTHLY, Gap, monthly_gaps
from fmcsa_status_view.location import Location
from fmcsa_status_view.models import (
    CompanyStatus,
    DayOutcomes,
    HistoryPoint,
    HistorySeries,
    Page,
    SourceStatus,
    Summary,
    SyncCounts,
    SyncState,
)
from fmcsa_status_view.record import docket_key
from fmcsa_status_view.risk import Light
from fmcsa_status_view.rows import (
    RETRY_FIELDS,
    CarrierRow,
    ChangeRow,
    CompanyRow,
    SourceRow,
    SyncLogRow,
    TotalsRow,
    ViolationRow,
    retry_progress,
)
from fmcsa_status_view.tables import CARRIER, CHANGE, COMPANY, SOURCE, SYNC_LOG, TOTALS, VIOLATION

MAX_LIMIT = 500

MAX_CURSOR = 512
"""Longest cursor text accepted; every cursor this view hands out is far shorter."""

_MAX_INT = 2**63 - 1  # the largest value a BIGINT (and SQLite's INTEGER) holds

R = TypeVar("R")


class InvalidCursor(ValueError):
    """A cursor that this view did not hand out (or that belongs to another list)."""


class StatusView:
    """Read-only queries on the status store at `database_url` (the same URL the projector uses)."""

    def __init__(self, database_url: str) -> None:
        self._location = Location(database_url)
        self._db: Database | None = None
        self._codec: Codec = codec_for("sqlite" if self._location.sqlite else "postgresql")
        self._log = RowBinding(SYNC_LOG, SyncLogRow, self._codec, ("request_id",))
        self._feed = RowBinding(CHANGE, ChangeRow, self._codec, ("position",))
        self._companies = RowBinding(COMPANY, CompanyRow, self._codec, ("dot",))
        self._sources = RowBinding(SOURCE, SourceRow, self._codec, ("dot", "source"))
        self._totals = RowBinding(TOTALS, TotalsRow, self._codec, ("scope",))
        self._carriers = RowBinding(CARRIER, CarrierRow, self._codec, ("dot",))
        self._violations = RowBinding(VIOLATION, ViolationRow, self._codec, ("dot", "seq"))
        # a company's status: its row, each of its sources and each open request's retry progress
        # in one statement (a company without sources: one row whose source columns are null)
        company_width, source_width = len(self._companies.names), len(self._sources.names)
        self._status_sql = (
            f"SELECT {', '.join(f'c.{c}' for c in self._companies.names)}, "
            f"{self._sources_columns} FROM status_company c "
            "LEFT JOIN status_source s ON s.dot = c.dot "
            f"{_RETRY_JOIN} WHERE c.dot = ?"
        )
        self._company_of = self._companies.reader()
        self._status_source_at = self._sources.reader(company_width, SourceStatus)
        self._source_of = self._sources.reader(0, SourceStatus)
        self._retry_at = (company_width + source_width, source_width)
        self._source_dot = company_width  # a source row's key column: null when the company has none
        self._marker: tuple[int, int] | None = None
        self._retired: list[Database] = []

    async def close(self) -> None:
        if self._db is not None:
            await self._db.dispose()
            self._db = None

    async def applied_position(self) -> int:
        """The last stream sequence folded into the store the view reads (0 before the first)."""

        async def work(session: Session) -> int:
            return int(await session.scalar("SELECT seq FROM status_position WHERE id = 1") or 0)

        return await self._run(work, 0)

    async def sync_counts(self, dot: str) -> SyncCounts:
        """One company's requests in the sync log: all, succeeded, failed, and the newest finish.

        Raises `InvalidDotNumber` for a value that is not 1-8 digits.
        """
        number = int(parse_dot(dot))
        sql = "SELECT status, COUNT(*), MAX(finished_at) FROM status_sync_log WHERE dot = ? GROUP BY status"

        async def work(session: Session) -> SyncCounts:
            total = succeeded = failed = 0
            newest: datetime | None = None
            for status, count, finished in await session.fetch(sql, (number,)):
                total += int(count)
                if status == SyncState.SUCCEEDED.value:
                    succeeded = int(count)
                elif status == SyncState.FAILED.value:
                    failed = int(count)
                moment = self._codec.time_in(finished)
                if moment is not None and (newest is None or moment > newest):
                    newest = moment
            return SyncCounts(total=total, succeeded=succeeded, failed=failed, last_finished_at=newest)

        return await self._run(work, SyncCounts(0, 0, 0, None))

    async def company_status(self, dot: str) -> CompanyStatus | None:
        """One company with every source it was requested for; None if no event ever named it.

        Raises `InvalidDotNumber` for a value that is not 1-8 digits.
        """
        number = int(parse_dot(dot))
        rows = await self._fetch(self._status_sql, (number,))
        if not rows:
            return None
        time_in = self._codec.time_in
        at, _ = self._retry_at
        sources: dict[SourceKey, SourceStatus] = {}
        for row in rows:
            if row[self._source_dot] is None:  # the company has no source (its one row)
                continue
            attempt, most, kind, message, retry_at = row[at:]
            retry = retry_progress(attempt, most, kind, message, time_in(retry_at))
            status: SourceStatus = self._status_source_at(row, retry)
            sources[status.source] = status
        return self._company(self._company_of(rows[0]), sources)

    async def registered_among(self, dots: Sequence[str]) -> set[str]:
        """Those of `dots` (canonical DOT numbers) that are registered and not removed since.

        Raises `InvalidDotNumber` for a value that is not 1-8 digits.
        """
        numbers = sorted({int(parse_dot(dot)) for dot in dots})
        found: set[str] = set()
        for start in range(0, len(numbers), 500):  # within every driver's limit of bound parameters
            chunk = numbers[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT dot FROM status_company WHERE active = ? AND dot IN ({marks})"

            async def work(session: Session, sql: str = sql, chunk: list[int] = chunk) -> list[Any]:
                return list(await session.fetch(sql, [True, *chunk]))

            rows: list[Any] = await self._run(work, [])
            found.update(str(row[0]) for row in rows)
        return found

    async def last_scheduled_requests(
        self, dot: str, sources: Iterable[SourceKey | str]
    ) -> dict[SourceKey, datetime]:
        """When the scheduler last requested each of `sources` for a company: the requested time of
        its newest `scheduled` or `catch_up` request in the sync log (as `sync_log(dot=, source=,
        trigger=, limit=1)` for both triggers would say), in one statement. A source the scheduler
        never requested is left out. Raises `InvalidDotNumber`, `InvalidSource` as the other queries.
        """
        number = int(parse_dot(dot))
        keys = sorted({parse_source(source).value for source in sources})
        if not keys:
            return {}
        triggers = ", ".join(f"'{Trigger(t).value}'" for t in (Trigger.SCHEDULED, Trigger.CATCH_UP))
        # one newest row per source, each through ix_status_sync_log_dot (dot, sort_at, request_id);
        # a row with a trigger has its request, so its sort_at is its requested_at
        sql = " UNION ALL ".join(
            f"SELECT * FROM (SELECT source, requested_at FROM status_sync_log WHERE dot = ? AND source = ?"
            f" AND trigger IN ({triggers}) AND requested_at IS NOT NULL"
            f" ORDER BY sort_at DESC, request_id DESC LIMIT 1) AS newest_{i}"
            for i in range(len(keys))
        )
        params = [value for key in keys for value in (number, key)]

        async def work(session: Session) -> list[tuple[Any, ...]]:
            return await session.fetch(sql, params)

        rows: list[Any] = await self._run(work, [])
        found: dict[SourceKey, datetime] = {}
        for source, requested_at in rows:
            moment = self._codec.time_in(requested_at)
            if moment is not None:
                found[SourceKey(source)] = moment
        return found

    async def list_companies(
        self,
        *,
        failing: bool | None = None,
        never_synced: bool | None = None,
        source: SourceKey | str | None = None,
        risk: Light | str | None = None,
        active_only: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[CompanyStatus]:
        """Companies by DOT number, ascending; the filters combine with AND.

        - `failing`: True = some source is failing; False = none is. With `source`, that source only.
        - `never_synced`: True = no successful fetch ever; False = at least one. With `source`, of that
          source (a company never requested for it counts as never synced).
        - `source` alone: companies that source was ever requested for.
        - `risk`: the carrier record's light (`fmcsa_status_view.risk`); `unknown` also matches a company
          with no record yet (no source succeeded for it).
        - `active_only` (default): registered and not removed since.
        """
        limit = _check_limit(limit)
        light = None if risk is None else Light(risk)
        after = _int_in(_decode_cursor(cursor, "c")[0], 0, 99_999_999) if cursor else 0
        join, where = "", ["c.dot > ?"]
        params: list[Any] = [after]
        if active_only:
            where.append("c.active = ?")
            params.append(True)
        if source is None:
            if failing is not None:
                where.append("c.failing = ?")
                params.append(failing)
            if never_synced is not None:
                where.append("c.never_synced = ?")
                params.append(never_synced)
        else:
            # the join's parameter comes first in the statement
            join = "LEFT JOIN status_source s ON s.dot = c.dot AND s.source = ?"
            params.insert(0, parse_source(source).value)
            if failing is True:
                where.append("s.failing = ?")
                params.append(True)
            elif failing is False:
                where.append("(s.dot IS NULL OR s.failing = ?)")
                params.append(False)
            if never_synced is True:
                where.append("(s.dot IS NULL OR s.success_request_id IS NULL)")
            elif never_synced is False:
                where.append("s.success_request_id IS NOT NULL")
            if failing is None and never_synced is None:
                where.append("s.dot IS NOT NULL")
        if light is not None:
            where.append("COALESCE((SELECT k.risk FROM status_carrier k WHERE k.dot = c.dot), ?) = ?")
            params += [Light.UNKNOWN.value, light.value]
        select = ", ".join(f"c.{name}" for name in self._companies.names)
        sql = (
            f"SELECT {select} FROM status_company c {join} WHERE {' AND '.join(where)} ORDER BY c.dot LIMIT ?"
        )
        params.append(limit + 1)

        async def work(session: Session) -> tuple[list[CompanyStatus], bool]:
            rows = await session.fetch(sql, params)
            return await self._with_sources(session, rows[:limit]), len(rows) > limit

        nothing: tuple[list[CompanyStatus], bool] = ([], False)
        items, more = await self._run(work, nothing)
        next_cursor = _encode_cursor("c", [int(items[-1].dot)]) if more and items else None
        return Page(tuple(items), next_cursor)

    async def sync_log(
        self,
        *,
        dot: str | None = None,
        source: SourceKey | str | None = None,
        status: SyncState | str | None = None,
        trigger: Trigger | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[SyncLogRow]:
        """Requests newest first (by requested time; an outcome whose request is not known yet sorts by
        its finish time). `since` is inclusive and `until` exclusive on that time. Raises ValueError
        (or `InvalidDotNumber`, `InvalidSource`) for a filter value outside its vocabulary.
        """
        limit = _check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        codec = self._codec
        if dot is not None:
            where.append("dot = ?")
            params.append(int(parse_dot(dot)))
        if source is not None:
            where.append("source = ?")
            params.append(parse_source(source).value)
        if status is not None:
            # a literal from the enum, so the partial index on failures can serve `failed`
            where.append(f"status = '{SyncState(status).value}'")
        if trigger is not None:
            where.append("trigger = ?")
            params.append(Trigger(trigger).value)
        if since is not None:
            where.append("sort_at >= ?")
            params.append(codec.time_out(_aware(since)))
        if until is not None:
            where.append("sort_at < ?")
            params.append(codec.time_out(_aware(until)))
        if cursor:
            at, request_id = _decode_cursor(cursor, "l")
            if not isinstance(at, str) or not isinstance(request_id, str):
                raise InvalidCursor("not a sync-log cursor")
            try:
                moment = codec.time_out(_aware(datetime.fromisoformat(at)))
            except (ValueError, OverflowError):  # a date near the ends of time overflows in UTC
                raise InvalidCursor("not a sync-log cursor") from None
            where.append("(sort_at < ? OR (sort_at = ? AND request_id < ?))")
            params += [moment, moment, request_id]
        log = self._log
        rows = await self._select(
            "status_sync_log", log.names, where, params, "sort_at DESC, request_id DESC", limit + 1
        )
        more = len(rows) > limit
        entries: list[SyncLogRow] = [log.decode(row) for row in rows[:limit]]
        next_cursor = None
        if more and entries:
            last = entries[-1]
            next_cursor = _encode_cursor("l", [last.sort_at.isoformat(), last.request_id])
        return Page(tuple(entries), next_cursor)

    async def changes(
        self,
        *,
        dot: str | None = None,
        source: SourceKey | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ChangeRow]:
        """The change feed, newest first (by stream position); the filters combine with AND. `since`
        is inclusive on `observed_at`. Raises ValueError (or `InvalidDotNumber`, `InvalidSource`) for
        a filter value outside its vocabulary (`kind` must be a `ChangeKind`), `InvalidCursor` for a
        cursor this list did not hand out.
        """
        limit = _check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if dot is not None:
            where.append("dot = ?")
            params.append(int(parse_dot(dot)))
        if source is not None:
            where.append("source = ?")
            params.append(parse_source(source).value)
        if kind is not None:
            where.append("kind = ?")
            params.append(ChangeKind(kind).value)
        if since is not None:
            where.append("observed_at >= ?")
            params.append(self._codec.time_out(_aware(since)))
        if cursor:
            where.append("position < ?")
            params.append(_int_in(_decode_cursor(cursor, "f")[0], 1, _MAX_INT))
        feed = self._feed
        rows = await self._select("status_change", feed.names, where, params, "position DESC", limit + 1)
        entries: list[ChangeRow] = [feed.decode(row) for row in rows[:limit]]
        more = len(rows) > limit
        next_cursor = _encode_cursor("f", [entries[-1].position]) if more and entries else None
        return Page(tuple(entries), next_cursor)

    async def carrier(self, dot: str) -> CarrierRow | None:
        """One carrier's record; None while no source has succeeded for it (or no event named it).
        Raises `InvalidDotNumber` for a value that is not 1-8 digits.
        """
        number = int(parse_dot(dot))
        rows = await self._select("status_carrier", self._carriers.names, ["dot = ?"], [number], "dot", 1)
        return self._carriers.decode(rows[0]) if rows else None

    async def carrier_violations(
        self,
        dot: str,
        *,
        basic: str | None = None,
        oos: bool | None = None,
        since: date | None = None,
        until: date | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ViolationRow]:
        """A carrier's violation rows, newest inspection first; the filters combine with AND (`since`
        and `until` inclusive, on the inspection date). Raises `InvalidDotNumber`, ValueError (limit),
        `InvalidCursor`.
        """
        limit = _check_limit(limit)
        where: list[str] = ["dot = ?"]
        params: list[Any] = [int(parse_dot(dot))]
        if basic is not None:
            where.append("basic = ?")
            params.append(basic)
        if oos is not None:
            where.append("oos = ?")
            params.append(oos)
        if since is not None:
            where.append("inspected_on >= ?")
            params.append(since.isoformat())
        if until is not None:
            where.append("inspected_on <= ?")
            params.append(until.isoformat())
        if cursor:
            where.append("seq > ?")
            params.append(_int_in(_decode_cursor(cursor, "v")[0], 0, _MAX_INT))
        rows = await self._select("status_violation", self._violations.names, where, params, "seq", limit + 1)
        items: list[ViolationRow] = [self._violations.decode(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(tuple(items), _encode_cursor("v", [items[-1].seq]) if more and items else None)

    async def search_carriers(
        self, *, q: str | None = None, risk: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[CarrierRow]:
        """Carrier records by DOT number: `q` matches a DOT number (all digits), a docket number (`MC-123`,
        any case or separator) or the start of the legal name (case-insensitive), any of them; `risk`
        a light. Raises ValueError (limit, empty `q`), `InvalidCursor`.
        """
        limit = _check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if q is not None:
            text = q.strip()
            if not text:
                raise ValueError("q must not be empty")
            either = ["name_key LIKE ? ESCAPE '\\'"]
            params.append(_like_prefix(text.casefold()))
            if text.isascii() and text.isdigit() and len(text) <= 8 and int(text) > 0:
                either.append("dot = ?")
                params.append(int(text))
            docket = docket_key(text)
            if docket is not None:
                either.append("docket_keys LIKE ?")
                params.append(f"%,{docket},%")
            where.append(f"({' OR '.join(either)})")
        if risk is not None:
            where.append("risk = ?")
            params.append(risk)
        if cursor:
            where.append("dot > ?")
            params.append(_int_in(_decode_cursor(cursor, "k")[0], 0, _MAX_INT))
        rows = await self._select("status_carrier", self._carriers.names, where, params, "dot", limit + 1)
        items: list[CarrierRow] = [self._carriers.decode(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(tuple(items), _encode_cursor("k", [int(items[-1].dot)]) if more and items else None)

    async def gaps(self, dot: str, *, today: date) -> list[Gap]:
        """The missing months of a company's monthly sources (`fmcsa_status_view.gaps`), by source then
        month. Raises `InvalidDotNumber` for a value that is not 1-8 digits.
        """
        number = int(parse_dot(dot))
        monthly = sorted(source.value for source in MONTHLY)
        marks = ", ".join("?" * len(monthly))
        sql = f"SELECT DISTINCT source, as_of FROM status_history WHERE dot = ? AND source IN ({marks})"

        async def work(session: Session) -> list[tuple[Any, ...]]:
            return await session.fetch(sql, (number, *monthly))

        rows: list[Any] = await self._run(work, [])
        as_ofs: dict[SourceKey, list[datetime]] = {}
        for source, as_of in rows:
            moment = self._codec.time_in(as_of)
            assert moment is not None, "as_of is part of the key"
            as_ofs.setdefault(SourceKey(source), []).append(moment)
        return [gap for source in sorted(as_ofs) for gap in monthly_gaps(source, as_ofs[source], today=today)]

    async def history(self, dot: str, *, source: SourceKey) -> list[HistorySeries]:
        """A company's series for one source (see `fmcsa_status.domain.feed` for the subjects and the
        values): series by subject, points by upstream as-of, oldest first. Empty for a company or
        source with none. Raises `InvalidDotNumber`, `InvalidSource` for values outside them.
        """
        number = int(parse_dot(dot))
        key = parse_source(source).value
        sql = "SELECT subject, as_of, figures FROM status_history WHERE dot = ? AND source = ?"

        async def work(session: Session) -> list[tuple[Any, ...]]:
            return await session.fetch(sql, (number, key))

        rows: list[Any] = await self._run(work, [])
        series: dict[str, list[HistoryPoint]] = {}
        t, j = self._codec.time_in, self._codec.json_in
        for subject, as_of, figures in rows:
            moment = t(as_of)
            assert moment is not None, "as_of is part of the key"
            series.setdefault(str(subject), []).append(HistoryPoint(moment, _figures(j(figures))))
        return [
            HistorySeries(subject, sorted(points, key=lambda p: p.as_of))
            for subject, points in sorted(series.items())
        ]

    async def summary(self, *, days: int = 30) -> Summary:
        """Totals, per source, and outcomes per day for the `days` days up to the newest day with any."""
        if not 1 <= days <= 3660:
            raise ValueError("days must be 1..3660")
        totals_sql = self._totals.select
        daily_sql = (
            "SELECT day, source, succeeded, failed FROM status_daily WHERE day >= ? ORDER BY day, source"
        )

        async def work(session: Session) -> Summary:
            totals = {row.scope: row for row in map(self._totals.decode, await session.fetch(totals_sql))}
            newest = await session.scalar("SELECT MAX(day) FROM status_daily")
            daily: Sequence[Any] = []
            if newest is not None:
                first = (date.fromisoformat(str(newest)) - timedelta(days=days - 1)).isoformat()
                daily = await session.fetch(daily_sql, (first,))
            position = await session.fetch("SELECT seq, events, rejected FROM status_position WHERE id = 1")
            return self._summary(totals, daily, position[0] if position else None)

        return await self._run(work, _empty_summary())

    @staticmethod
    def _summary(totals: dict[str, TotalsRow], daily: Sequence[Any], position: Any) -> Summary:
        every = totals.get("all") or TotalsRow("all")
        return Summary(
            companies=every.companies,
            failing=every.failing,
            never_synced=every.never_synced,
            requests=every.requests,
            succeeded=every.succeeded,
            failed=every.failed,
            last_sync_at=every.last_finished_at,
            last_success_at=every.last_success_at,
            per_source={s: row for s in SourceKey if (row := totals.get(s.value)) is not None},
            outcomes_per_day=tuple(
                DayOutcomes(date.fromisoformat(str(day)), SourceKey(source), int(ok), int(bad))
                for day, source, ok, bad in daily
            ),
            position=int(position[0]) if position else 0,
            events=int(position[1]) if position else 0,
            rejected=int(position[2]) if position else 0,
        )

    # --- plumbing ---------------------------------------------------------------------------

    async def _select(
        self,
        table: str,
        columns: Sequence[str],
        where: list[str],
        params: list[Any],
        order_by: str,
        limit: int,
    ) -> list[Any]:
        """One page of rows: the conditions combined with AND, in `order_by`, at most `limit` rows."""
        sql = (
            f"SELECT {', '.join(columns)} FROM {table}"
            f"{' WHERE ' + ' AND '.join(where) if where else ''}"
            f" ORDER BY {order_by} LIMIT ?"
        )
        values = [*params, limit]

        async def work(session: Session) -> list[tuple[Any, ...]]:
            return await session.fetch(sql, values)

        return await self._run(work, [])

    def _current(self) -> Database:
        """The live store's database; reopened when a rebuilt store was swapped in. A query already
        running keeps the connection it started on.
        """
        marker = self._location.marker()
        if self._db is None or marker != self._marker:
            old, self._db = self._db, open_database(self._location.live_url(), writer=False)
            self._marker = marker
            if old is not None:
                self._retired.append(old)
        return self._db

    @property
    def _sources_columns(self) -> str:
        """A source row's columns (`s.`), then its newest request's retry progress (`l.`)."""
        return ", ".join([*(f"s.{c}" for c in self._sources.names), *(f"l.{c}" for c in RETRY_FIELDS)])

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one statement, itself one snapshot (no transaction around it); none if the store
        has no tables yet.
        """
        while self._retired:
            await self._retired.pop().dispose()
        try:
            return await self._current().fetch(sql, params)
        except (DBAPIError, sqlite3.OperationalError) as error:
            if _missing_table(error):
                return []
            raise

    async def _run(self, work: Callable[[Session], Awaitable[R]], empty: R) -> R:
        """Run `work` in one read transaction (one snapshot); `empty` if the store has no tables yet."""
        while self._retired:
            await self._retired.pop().dispose()
        try:
            async with self._current().transaction() as session:
                return await work(session)
        except (DBAPIError, sqlite3.OperationalError) as error:
            if _missing_table(error):
                return empty
            raise

    async def _with_sources(self, session: Session, rows: Sequence[Any]) -> list[CompanyStatus]:
        companies: list[CompanyRow] = [self._companies.decode(row) for row in rows]
        sources: dict[str, dict[SourceKey, SourceStatus]] = {c.dot: {} for c in companies}
        if companies:
            marks = ", ".join("?" * len(companies))
            columns = self._sources_columns
            sql = f"SELECT {columns} FROM status_source s {_RETRY_JOIN} WHERE s.dot IN ({marks})"
            _, width = self._retry_at
            time_in = self._codec.time_in
            for row in await session.fetch(sql, [int(c.dot) for c in companies]):
                attempt, most, kind, message, at = row[width:]
                retry = retry_progress(attempt, most, kind, message, time_in(at))
                status = self._source_of(row, retry)  # the row, then its retry progress
                sources[status.dot][status.source] = status
        return [self._company(c, sources[c.dot]) for c in companies]

    @staticmethod
    def _company(row: CompanyRow, sources: dict[SourceKey, SourceStatus]) -> CompanyStatus:
        return CompanyStatus(
            dot=row.dot,
            name=row.name,
            active=row.active,
            registered_at=row.registered_at,
            removed_at=row.removed_at,
            last_run=_newest(s.last_finished_at for s in sources.values()),
            last_success_at=_newest(s.last_success_at for s in sources.values()),
            success=row.success,
            failing=row.failing,
            never_synced=row.never_synced,
            failing_sources=tuple(SourceKey(s) for s in row.failing_sources.split(",") if s),
            sources={s: sources[s] for s in SourceKey if s in sources},
        )


_RETRY_JOIN = "LEFT JOIN status_sync_log l ON s.state = 'requested' AND l.request_id = s.last_request_id"
"""The newest request's retry progress, only for pairs whose newest request is open."""


def _newest(moments: Iterable[datetime | None]) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching text that starts with `text` (its `%`, `_` and backslash escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    return limit


def _encode_cursor(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str) -> list[Any]:
    """The values of a cursor of list `kind`; `InvalidCursor` for anything else, whatever it holds
    (over-long text, bad base64 or JSON, nesting deep enough to exhaust the parser, another list).
    """
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR:
        raise InvalidCursor("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidCursor("malformed cursor") from None
    if not isinstance(values, list) or len(values) < 2 or values[0] != kind:
        raise InvalidCursor("a cursor of another list")
    if any(isinstance(v, str) and has_control_characters(v) for v in values):
        raise InvalidCursor("malformed cursor")  # PostgreSQL refuses a NUL in a parameter: no 500
    return values[1:]


def _int_in(value: Any, low: int, high: int) -> int:
    """A cursor's integer, refused (`InvalidCursor`) unless it is a JSON integer in `low..high`: a
    larger one would overflow the driver, a bool or float is no cursor this view made.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidCursor("a cursor value out of range")
    return value


def _figures(value: Any) -> dict[str, float | None]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k): float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        for k, v in value.items()
    }


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return moment


def _missing_table(error: Exception) -> bool:
    message = str(getattr(error, "orig", error)).lower()
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def _empty_summary() -> Summary:
    return Summary(0, 0, 0, 0, 0, 0, None, None, {}, (), 0, 0, 0)
