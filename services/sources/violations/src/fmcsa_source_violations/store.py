"""The violations store: one row per violation key, superseded versions, aged-out marks, per-carrier reads.

Keyed `(dot_number, unique_id, viol_code, viol_unit, ordinal)` (docs/upstreams.md 4.5). Works on SQLite
and PostgreSQL alike. The store decides nothing about the domain: `upsert` loads what it holds for the
carrier (`domain.Held`), asks the pure `domain.plan` what the read changes, and executes that plan in
one transaction together with the plan's change facts in the change outbox (both are stored or
neither). The transaction first writes (and locks) the carrier's row, so concurrent upserts of the same
carrier queue up instead of racing, and the second one plans against what the first one wrote.

Tables (names and columns unchanged since the first release, so existing stores keep working):
`violations_violation` (the current state of a key; `aged_out_at` set when a complete read missed it),
`violations_violation_version` (superseded contents), `violations_carrier` (the last read of a
carrier and what it holds) and `violations_carrier_mark` (its delta mark and last full read, for
`domain.delta`; a carrier without one is read in full next). Times are aware UTC datetimes in code
and naive UTC in the columns (`UtcDateTime`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, Index, Text, func, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from fmcsa_events.identifiers import Basic
from fmcsa_events.models import Counts
from fmcsa_runtime.database import upsert_insert
from fmcsa_source_kit.guard import check_drop, guarded
from fmcsa_source_kit.outbox import record_changes
from fmcsa_source_kit.plan import Observation
from fmcsa_source_kit.tables import GuardedStore
from fmcsa_source_violations.domain.changes import Held, HeldRow, ViolationsPlan, plan
from fmcsa_source_violations.domain.delta import Mark, delta_plan, newest
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases, in the `TIMESTAMP WITHOUT TIME ZONE` columns the store
    has always had: stored as naive UTC, read back with tzinfo=UTC.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class _ViolationColumns(SQLModel):
    """The stored fields of a violation: its key, normalized content and content hash."""

    dot_number: int
    unique_id: str
    viol_code: str
    viol_unit: str
    ordinal: int
    insp_date: date
    basic: str | None = None
    basic_desc: str | None = None
    oos: bool
    oos_weight: int
    severity_weight: int
    time_weight: int
    total_severity_wght: int | None = None
    section_desc: str | None = Field(default=None, sa_type=Text)
    group_desc: str | None = Field(default=None, sa_type=Text)
    content_hash: str = Field(max_length=64)


def _key_column() -> Any:
    return Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class ViolationRecord(_ViolationColumns, table=True):
    """The current state of one violation key; `aged_out_at` is set when a complete read missed it."""

    __tablename__ = "violations_violation"

    dot_number: int = _key_column()
    unique_id: str = _key_column()
    viol_code: str = _key_column()
    viol_unit: str = _key_column()
    ordinal: int = _key_column()
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)
    changed_at: datetime = Field(sa_type=UtcDateTime)
    aged_out_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    upstream_as_of: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ViolationVersion(_ViolationColumns, table=True):
    """A superseded content of a key, kept when an update replaced it (evidence outlives the upstream)."""

    __tablename__ = "violations_violation_version"
    __table_args__ = (
        Index("ix_violations_version_key", "dot_number", "unique_id", "viol_code", "viol_unit"),
    )

    id: int | None = Field(default=None, primary_key=True)
    valid_from: datetime = Field(sa_type=UtcDateTime)
    superseded_at: datetime = Field(sa_type=UtcDateTime)


class CarrierRead(SQLModel, table=True):
    """The last complete read of one carrier: when, the dataset's as-of, what it held."""

    __tablename__ = "violations_carrier"

    dot_number: int = _key_column()
    last_fetched_at: datetime = Field(sa_type=UtcDateTime)
    upstream_as_of: datetime | None = Field(default=None, sa_type=UtcDateTime)
    held: int = 0
    aged_out: int = 0


class CarrierMark(SQLModel, table=True):
    """A carrier's delta mark (the newest `:updated_at` its reads saw) and its last full read."""

    __tablename__ = "violations_carrier_mark"

    dot_number: int = _key_column()
    high_water: datetime | None = Field(default=None, sa_type=UtcDateTime)
    full_read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    full_read_as_of: datetime | None = Field(default=None, sa_type=UtcDateTime)


_TABLES = [
    ViolationRecord.__table__,  # type: ignore[attr-defined]
    ViolationVersion.__table__,  # type: ignore[attr-defined]
    CarrierRead.__table__,  # type: ignore[attr-defined]
    CarrierMark.__table__,  # type: ignore[attr-defined]
]
_KEY = ("dot_number", "unique_id", "viol_code", "viol_unit", "ordinal")
_CONTENT = tuple(field.name for field in fields(Violation))
"""The stored columns of a violation: its key, content and hash (the same names as `Violation`'s)."""
_TIMES = ("changed_at", "aged_out_at", "last_seen", "upstream_as_of")
_REPLACED = (*(name for name in _CONTENT if name not in _KEY), *_TIMES)
"""What an update of a held key writes (its `first_seen` stays)."""


@dataclass(frozen=True, slots=True)
class HeldCounts:
    """What the store holds for one carrier: rows in the current window and rows that aged out."""

    current: int
    aged_out: int


def _content(violation: Violation) -> dict[str, Any]:
    stored = {name: getattr(violation, name) for name in _CONTENT}
    return stored | {"basic": violation.basic.value if violation.basic else None}


def _key(violation: Violation) -> dict[str, Any]:
    return dict(zip(_KEY, violation.key, strict=True))


def _violation_from(row: _ViolationColumns) -> Violation:
    try:
        basic: Basic | None = Basic(row.basic) if row.basic is not None else None
    except ValueError:  # a key written by a newer version of this service
        basic = None
    stored = {name: getattr(row, name) for name in _CONTENT}
    return Violation(**stored | {"basic": basic, "oos": bool(row.oos)})


def _held_row(row: ViolationRecord) -> HeldRow:
    return HeldRow(_violation_from(row), changed_at=row.changed_at, aged_out=row.aged_out_at is not None)


class Store(GuardedStore):
    """Normalized violations; `upsert` executes what `domain.plan` decides (module docstring)."""

    TABLES = _TABLES

    async def upsert(self, fetch: ViolationsFetch, *, request_id: UUID) -> Counts:
        """Store one complete read and its change facts for `request_id`, in one transaction, as
        `domain.plan` decides (what each count means is there). Idempotent: the same fetch again
        counts every row as unchanged and records no change.
        """
        seen = Observation(request_id, fetch.dot, fetch.retrieved_at, fetch.upstream_as_of)
        async with (
            guarded(self._engine, request_id=request_id, at=fetch.retrieved_at),
            AsyncSession(self._engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            previous = await self._touch_carrier(session, fetch)  # first write: takes this carrier's lock
            held = None if previous is None else await self._load(session, previous)
            delta = fetch.delta and held is not None  # a delta of a carrier never read is its baseline
            planned = delta_plan(held, fetch, seen) if delta and held is not None else plan(held, fetch, seen)
            live = 0 if held is None else sum(not row.aged_out for row in held.rows)
            await check_drop(
                await session.connection(),
                self._guard,
                dot=fetch.dot,
                held=live,
                dropped=len(planned.age_out),
                what="violations",
            )
            await self._execute(session, fetch, planned)
            await self._note_mark(session, fetch, full=not delta)
            await record_changes(await session.connection(), planned.changes)
        return planned.counts

    async def previous(self, dot: str) -> ViolationsFetch | None:
        """What the store holds for a carrier as of its last read (rows in the window, aged-out rows
        left out), or None when it was never read.
        """
        async with AsyncSession(self._engine, expire_on_commit=False) as session:
            carrier = await session.get(CarrierRead, int(dot))
            return None if carrier is None else (await self._load(session, carrier)).window()

    async def mark(self, dot: str) -> Mark | None:
        """What decides a carrier's next read (`domain.delta.needs_reconciliation`); None: never read."""
        async with AsyncSession(self._engine) as session:
            carrier = await session.get(CarrierRead, int(dot))
            if carrier is None:
                return None
            noted = await session.get(CarrierMark, int(dot))
            return Mark(
                high_water=noted.high_water if noted else None,
                full_read_at=noted.full_read_at if noted else None,
                full_read_as_of=noted.full_read_as_of if noted else None,
                seen_as_of=carrier.upstream_as_of,
            )

    async def _note_mark(self, session: AsyncSession, fetch: ViolationsFetch, *, full: bool) -> None:
        """Move the carrier's mark to the newest `:updated_at` seen; a full read is noted as such. The
        carrier's row, locked first in the transaction, serializes this with other reads of it.
        """
        noted = await session.get(CarrierMark, int(fetch.dot))
        if noted is None:
            noted = CarrierMark(dot_number=int(fetch.dot))
            session.add(noted)
        noted.high_water = newest((noted.high_water, fetch.high_water))
        if full:
            noted.full_read_at, noted.full_read_as_of = fetch.retrieved_at, fetch.upstream_as_of

    async def held(self, dot: str) -> HeldCounts:
        """Rows in the current window and rows aged out, for one carrier."""
        async with AsyncSession(self._engine) as session:
            return await self._held(session, int(dot))

    async def versions(self, dot: str) -> int:
        """How many superseded versions are kept for one carrier."""
        async with AsyncSession(self._engine) as session:
            counted = select(func.count()).where(col(ViolationVersion.dot_number) == int(dot))
            return (await session.exec(counted)).one()

    async def _load(self, session: AsyncSession, carrier: CarrierRead) -> Held:
        rows = await session.exec(
            select(ViolationRecord)
            .where(col(ViolationRecord.dot_number) == carrier.dot_number)
            .order_by(*(col(getattr(ViolationRecord, name)) for name in _KEY))
        )
        return Held(
            dot=str(carrier.dot_number),
            last_fetched_at=carrier.last_fetched_at,
            upstream_as_of=carrier.upstream_as_of,
            rows=tuple(_held_row(row) for row in rows),
        )

    async def _execute(self, session: AsyncSession, fetch: ViolationsFetch, planned: ViolationsPlan) -> None:
        """Write what the plan says; every row in the read is marked seen by this read."""
        at, as_of = fetch.retrieved_at, fetch.upstream_as_of
        if planned.supersede:
            session.add_all(
                ViolationVersion(**_content(held.violation), valid_from=held.changed_at, superseded_at=at)
                for held in planned.supersede
            )
        if planned.insert or planned.update:  # one bulk upsert: new keys inserted, held keys replaced
            upsert = upsert_insert(self._engine.dialect, ViolationRecord)
            times = {"first_seen": at, "last_seen": at, "changed_at": at, "aged_out_at": None}
            await session.exec(
                upsert.on_conflict_do_update(
                    index_elements=list(_KEY), set_={name: upsert.excluded[name] for name in _REPLACED}
                ),
                params=[
                    {**_content(v), **times, "upstream_as_of": as_of}
                    for v in (*planned.insert, *planned.update)
                ],
            )
        if planned.refresh:  # ORM bulk UPDATE by primary key
            await session.exec(
                update(ViolationRecord),
                params=[
                    {**_key(v), "time_weight": v.time_weight, "total_severity_wght": v.total_severity_wght}
                    for v in planned.refresh
                ],
            )
        if planned.age_out:
            await session.exec(
                update(ViolationRecord), params=[{**_key(v), "aged_out_at": at} for v in planned.age_out]
            )
        dot_number = int(fetch.dot)
        await session.exec(
            update(ViolationRecord)
            .where(col(ViolationRecord.dot_number) == dot_number, col(ViolationRecord.aged_out_at).is_(None))
            .values(last_seen=at, upstream_as_of=as_of)
        )
        await session.flush()
        counts = await self._held(session, dot_number)
        await session.exec(
            update(CarrierRead)
            .where(col(CarrierRead.dot_number) == dot_number)
            .values(held=counts.current, aged_out=counts.aged_out)
        )

    async def _held(self, session: AsyncSession, dot_number: int) -> HeldCounts:
        aged = col(ViolationRecord.aged_out_at)
        result = await session.exec(
            select(func.count().filter(aged.is_(None)), func.count().filter(aged.is_not(None))).where(
                col(ViolationRecord.dot_number) == dot_number
            )
        )
        current, aged_out = result.one()
        return HeldCounts(current=int(current or 0), aged_out=int(aged_out or 0))

    async def _touch_carrier(self, session: AsyncSession, fetch: ViolationsFetch) -> CarrierRead | None:
        """Record this read on the carrier's row, locking it for the transaction, and return the row
        as it was before (None: the carrier was never read, so this read is its baseline).

        The first statement writes (a Core insert that does nothing on conflict): on SQLite it takes
        the write lock, on PostgreSQL a concurrent first insert waits here; the `FOR UPDATE` then
        queues a concurrent upsert behind this one.
        """
        dot_number = int(fetch.dot)
        values = {"last_fetched_at": fetch.retrieved_at, "upstream_as_of": fetch.upstream_as_of}
        first = upsert_insert(self._engine.dialect, CarrierRead).values(
            dot_number=dot_number, held=0, aged_out=0, **values
        )
        created = await session.exec(first.on_conflict_do_nothing(index_elements=["dot_number"]))
        if created.rowcount == 1:
            return None
        carrier = await session.get(CarrierRead, dot_number, with_for_update=True)
        assert carrier is not None  # the insert above met it
        previous = CarrierRead(
            dot_number=dot_number,
            last_fetched_at=carrier.last_fetched_at,
            upstream_as_of=carrier.upstream_as_of,
        )
        carrier.last_fetched_at, carrier.upstream_as_of = fetch.retrieved_at, fetch.upstream_as_of
        return previous
