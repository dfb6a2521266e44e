"""The violations store: one row per violation key, superseded versions, aged-out marks, per-carrier reads.

Keyed `(dot_number, unique_id, viol_code, viol_unit, ordinal)` (README 4.5). Works on SQLite and
PostgreSQL alike; every upsert of one carrier is one transaction that first writes (and locks) the
carrier's row, so concurrent upserts of the same carrier queue up instead of racing. The change facts
of a read (`domain.detect_changes`) go to the change outbox in that same transaction as the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, DateTime, Index, Integer, String, Text, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from fmcsa_events.models import Counts
from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.outbox import create_outbox, record_changes
from fmcsa_source_violations.domain import Basic, Violation, ViolationKey, ViolationsFetch, detect_changes


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases: stored as naive UTC, read back with tzinfo=UTC."""

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


def _utc(nullable: bool) -> Any:
    return Field(default=None, sa_column=Column(UtcDateTime(), nullable=nullable))


class ViolationRecord(SQLModel, table=True):
    """The current state of one violation key; `aged_out_at` is set when a complete read missed it."""

    __tablename__ = "violations_violation"

    dot_number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    unique_id: str = Field(sa_column=Column(String, primary_key=True))
    viol_code: str = Field(sa_column=Column(String, primary_key=True))
    viol_unit: str = Field(sa_column=Column(String, primary_key=True))
    ordinal: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    insp_date: date
    basic: str | None = None
    basic_desc: str | None = None
    oos: bool
    oos_weight: int
    severity_weight: int
    time_weight: int
    total_severity_wght: int | None = None
    section_desc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    group_desc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    content_hash: str = Field(max_length=64)
    first_seen: datetime = _utc(nullable=False)
    last_seen: datetime = _utc(nullable=False)
    changed_at: datetime = _utc(nullable=False)
    aged_out_at: datetime | None = _utc(nullable=True)
    upstream_as_of: datetime | None = _utc(nullable=True)


class ViolationVersion(SQLModel, table=True):
    """A superseded content of a key, kept when an update replaced it (evidence outlives the upstream)."""

    __tablename__ = "violations_violation_version"
    __table_args__ = (
        Index("ix_violations_version_key", "dot_number", "unique_id", "viol_code", "viol_unit"),
    )

    id: int | None = Field(default=None, primary_key=True)
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
    section_desc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    group_desc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    content_hash: str = Field(max_length=64)
    valid_from: datetime = _utc(nullable=False)
    superseded_at: datetime = _utc(nullable=False)


class CarrierRead(SQLModel, table=True):
    """The last complete read of one carrier: when, the dataset's as-of, what it held."""

    __tablename__ = "violations_carrier"

    dot_number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last_fetched_at: datetime = _utc(nullable=False)
    upstream_as_of: datetime | None = _utc(nullable=True)
    held: int = 0
    aged_out: int = 0


_VIOLATION = ViolationRecord.__table__  # type: ignore[attr-defined]  # SQLModel sets it at class creation
_VERSION = ViolationVersion.__table__  # type: ignore[attr-defined]
_CARRIER = CarrierRead.__table__  # type: ignore[attr-defined]
_TABLES = [_VIOLATION, _VERSION, _CARRIER]
_CONTENT = (
    "insp_date",
    "basic",
    "basic_desc",
    "oos",
    "oos_weight",
    "severity_weight",
    "time_weight",
    "total_severity_wght",
    "section_desc",
    "group_desc",
    "content_hash",
)
_KEY = ("dot_number", "unique_id", "viol_code", "viol_unit", "ordinal")


@dataclass(frozen=True, slots=True)
class HeldCounts:
    """What the store holds for one carrier: rows in the current window and rows that aged out."""

    current: int
    aged_out: int


def _content(violation: Violation) -> dict[str, Any]:
    return {
        "insp_date": violation.insp_date,
        "basic": violation.basic.value if violation.basic else None,
        "basic_desc": violation.basic_desc,
        "oos": violation.oos,
        "oos_weight": violation.oos_weight,
        "severity_weight": violation.severity_weight,
        "time_weight": violation.time_weight,
        "total_severity_wght": violation.total_severity_wght,
        "section_desc": violation.section_desc,
        "group_desc": violation.group_desc,
        "content_hash": violation.content_hash,
    }


def _key_params(key: ViolationKey) -> dict[str, Any]:
    return {f"k_{name}": value for name, value in zip(_KEY, key, strict=True)}


def _key_where() -> Any:
    return and_(*(_VIOLATION.c[name] == bindparam(f"k_{name}") for name in _KEY))


def _violation_from(row: Mapping[Any, Any]) -> Violation:
    try:
        basic: Basic | None = Basic(row["basic"]) if row["basic"] is not None else None
    except ValueError:  # a key written by a newer version of this service
        basic = None
    return Violation(
        dot_number=row["dot_number"],
        unique_id=row["unique_id"],
        viol_code=row["viol_code"],
        viol_unit=row["viol_unit"],
        ordinal=row["ordinal"],
        insp_date=row["insp_date"],
        basic=basic,
        basic_desc=row["basic_desc"],
        oos=bool(row["oos"]),
        oos_weight=row["oos_weight"],
        severity_weight=row["severity_weight"],
        time_weight=row["time_weight"],
        total_severity_wght=row["total_severity_wght"],
        section_desc=row["section_desc"],
        group_desc=row["group_desc"],
        content_hash=row["content_hash"],
    )


def _held_fetch(carrier: Mapping[Any, Any], rows: Sequence[Mapping[Any, Any]]) -> ViolationsFetch:
    """What the store held for a carrier as a fetch: its rows in the window, aged-out rows left out."""
    return ViolationsFetch(
        dot=str(carrier["dot_number"]),
        retrieved_at=carrier["last_fetched_at"],
        upstream_as_of=carrier["upstream_as_of"],
        records=tuple(_violation_from(row) for row in rows if row["aged_out_at"] is None),
        pages=0,
    )


class Store:
    """Normalized violations with change detection. See `upsert` for what each count means."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    async def connect(cls, url: str) -> Store:
        """Open the database and create the `violations_*` tables and the change outbox if missing."""
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all, tables=_TABLES)
        await create_outbox(engine)
        return cls(engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def upsert(self, fetch: ViolationsFetch, *, request_id: UUID) -> Counts:
        """Store one complete read and its change facts for `request_id`, in one transaction.
        Idempotent: the same fetch again counts every row as unchanged and records no change.

        Per key: new -> inserted; same content hash -> unchanged (`time_weight` and
        `total_severity_wght` refreshed silently); other hash -> updated, the old content kept as a
        version; a key back after aging out -> updated. Keys held but missing from this read are
        marked aged out (their `last_seen` stays at the last read that had them); they are not counted.
        Change facts (`violations_added`, `violations_aged_out`) compare the rows held in the window
        with the read; a carrier's first read is a baseline and records none.
        """
        dot_number = int(fetch.dot)
        seen_at = fetch.retrieved_at
        async with self._engine.begin() as conn:
            carrier = await self._touch_carrier(conn, fetch)  # first write: takes this carrier's lock
            of_carrier = select(_VIOLATION).where(_VIOLATION.c.dot_number == dot_number)
            rows = list((await conn.execute(of_carrier)).mappings())
            held = {tuple(row[name] for name in _KEY): row for row in rows}
            before = None if carrier is None else _held_fetch(carrier, rows)
            changes = detect_changes(before, fetch, request_id=request_id, observed_at=seen_at)
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            versions: list[dict[str, Any]] = []
            refreshes: list[dict[str, Any]] = []
            unchanged = 0
            for violation in fetch.records:
                old = held.get(violation.key)
                content = _content(violation)
                if old is None:
                    inserts.append(
                        {
                            **dict(zip(_KEY, violation.key, strict=True)),
                            **content,
                            "first_seen": seen_at,
                            "last_seen": seen_at,
                            "changed_at": seen_at,
                            "aged_out_at": None,
                            "upstream_as_of": fetch.upstream_as_of,
                        }
                    )
                elif old["content_hash"] != violation.content_hash or old["aged_out_at"] is not None:
                    if old["content_hash"] != violation.content_hash:
                        versions.append(
                            {
                                **{name: old[name] for name in (*_KEY, *_CONTENT)},
                                "valid_from": old["changed_at"],
                                "superseded_at": seen_at,
                            }
                        )
                    updates.append({**_key_params(violation.key), **content, "changed_at": seen_at})
                else:
                    unchanged += 1
                    if (old["time_weight"], old["total_severity_wght"]) != (
                        violation.time_weight,
                        violation.total_severity_wght,
                    ):
                        refreshes.append(
                            {
                                **_key_params(violation.key),
                                "time_weight": violation.time_weight,
                                "total_severity_wght": violation.total_severity_wght,
                            }
                        )
            fetched_keys = {violation.key for violation in fetch.records}
            aging = [
                _key_params(key)
                for key, row in held.items()
                if key not in fetched_keys and row["aged_out_at"] is None
            ]
            if aging:
                await conn.execute(update(_VIOLATION).where(_key_where()).values(aged_out_at=seen_at), aging)
            if versions:
                await conn.execute(_VERSION.insert(), versions)
            if updates:
                await conn.execute(
                    update(_VIOLATION)
                    .where(_key_where())
                    .values(
                        **{name: bindparam(name) for name in _CONTENT},
                        changed_at=bindparam("changed_at"),
                        aged_out_at=None,
                    ),
                    updates,
                )
            if refreshes:
                await conn.execute(
                    update(_VIOLATION)
                    .where(_key_where())
                    .values(
                        time_weight=bindparam("time_weight"),
                        total_severity_wght=bindparam("total_severity_wght"),
                    ),
                    refreshes,
                )
            if inserts:
                await conn.execute(_VIOLATION.insert(), inserts)
            await conn.execute(
                update(_VIOLATION)
                .where(_VIOLATION.c.dot_number == dot_number, _VIOLATION.c.aged_out_at.is_(None))
                .values(last_seen=seen_at, upstream_as_of=fetch.upstream_as_of)
            )
            held_counts = await self._held(conn, dot_number)
            await conn.execute(
                update(_CARRIER)
                .where(_CARRIER.c.dot_number == dot_number)
                .values(held=held_counts.current, aged_out=held_counts.aged_out)
            )
            await record_changes(conn, changes)
        return Counts(
            fetched=len(fetch.records),
            inserted=len(inserts),
            updated=len(updates),
            unchanged=unchanged,
        )

    async def previous(self, dot: str) -> ViolationsFetch | None:
        """What the store holds for a carrier as of its last read (rows in the window, aged-out rows
        left out), or None when it was never read. Call it before `upsert` to diff old and new.
        """
        dot_number = int(dot)
        async with self._engine.connect() as conn:
            carrier = (
                (await conn.execute(select(_CARRIER).where(_CARRIER.c.dot_number == dot_number)))
                .mappings()
                .first()
            )
            if carrier is None:
                return None
            rows = await conn.execute(
                select(_VIOLATION)
                .where(_VIOLATION.c.dot_number == dot_number, _VIOLATION.c.aged_out_at.is_(None))
                .order_by(*(_VIOLATION.c[name] for name in _KEY))
            )
            return _held_fetch(carrier, list(rows.mappings()))

    async def held(self, dot: str) -> HeldCounts:
        """Rows in the current window and rows aged out, for one carrier."""
        async with self._engine.connect() as conn:
            return await self._held(conn, int(dot))

    async def versions(self, dot: str) -> int:
        """How many superseded versions are kept for one carrier."""
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(func.count()).select_from(_VERSION).where(_VERSION.c.dot_number == int(dot))
            )
            return int(result.scalar_one())

    async def _held(self, conn: AsyncConnection, dot_number: int) -> HeldCounts:
        result = await conn.execute(
            select(
                func.count().filter(_VIOLATION.c.aged_out_at.is_(None)),
                func.count().filter(_VIOLATION.c.aged_out_at.is_not(None)),
            ).where(_VIOLATION.c.dot_number == dot_number)
        )
        current, aged = result.one()
        return HeldCounts(current=int(current or 0), aged_out=int(aged or 0))

    async def _touch_carrier(self, conn: AsyncConnection, fetch: ViolationsFetch) -> Mapping[str, Any] | None:
        """Record this read on the carrier's row, locking it for the transaction, and return the row
        as it was before (None: the carrier was never read, so this read is its baseline).

        The first statement writes: on SQLite it takes the write lock, on PostgreSQL a concurrent
        first insert waits here; the `FOR UPDATE` then queues a concurrent upsert behind this one.
        """
        dot_number = int(fetch.dot)
        values = {"last_fetched_at": fetch.retrieved_at, "upstream_as_of": fetch.upstream_as_of}
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        statement = insert(_CARRIER).values(dot_number=dot_number, held=0, aged_out=0, **values)
        created = await conn.execute(statement.on_conflict_do_nothing(index_elements=["dot_number"]))
        if created.rowcount == 1:
            return None
        where = _CARRIER.c.dot_number == dot_number
        previous = (await conn.execute(select(_CARRIER).where(where).with_for_update())).mappings().one()
        await conn.execute(update(_CARRIER).where(where).values(**values))
        return dict(previous)
