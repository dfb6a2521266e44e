"""The inspections store: one current SAFER snapshot per carrier, and every distinct version seen.

Tables: `inspections_snapshot` (one row per usdot: the snapshot held now, its content hash, when it
was first seen and last confirmed) and `inspections_snapshot_version` (one row per distinct content
of a carrier, keyed by usdot and content hash; the hash covers `latest_update`, so this key is the
`(usdot, latest_update, hash)` of the fmcsa README without a nullable key column). Works on SQLite
and PostgreSQL. The change facts of a fetch (`domain.detect_changes` between the snapshot held and the
new one) are recorded in the change outbox in the same transaction as the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, Index, Text, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import Field, SQLModel, col

from fmcsa_events.identifiers import parse_dot
from fmcsa_events.models import Counts
from fmcsa_runtime.database import create_engine
from fmcsa_source_inspections.domain import (
    DEFAULT_OOS_RATE_CHANGE_POINTS,
    Change,
    InspectionsFetch,
    Snapshot,
    content_hash,
    counts_for,
    decide_change,
    detect_changes,
    snapshot_content,
    snapshot_from_content,
)
from fmcsa_source_kit.outbox import create_outbox, record_changes


class InspectionsSnapshotRow(SQLModel, table=True):
    """The snapshot of one carrier as held now."""

    __tablename__ = "inspections_snapshot"

    usdot: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    content_hash: str = Field(max_length=64)
    latest_update: date | None = None
    legal_name: str | None = None
    operating_status: str | None = None
    safety_rating: str | None = None
    content: str = Field(sa_type=Text)
    retrieved_at: datetime = Field(sa_type=DateTime(timezone=True))  # the fetch that stored or confirmed it
    first_seen_at: datetime = Field(sa_type=DateTime(timezone=True))  # this content first seen
    checked_at: datetime = Field(sa_type=DateTime(timezone=True))  # last fetch that found it unchanged


class InspectionsSnapshotVersionRow(SQLModel, table=True):
    """One distinct content of a carrier's snapshot, with when it was first and last seen."""

    __tablename__ = "inspections_snapshot_version"
    __table_args__ = (Index("ix_inspections_snapshot_version_usdot_latest", "usdot", "latest_update"),)

    usdot: int = Field(primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False})
    content_hash: str = Field(primary_key=True, max_length=64)
    latest_update: date | None = None
    content: str = Field(sa_type=Text)
    first_seen_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_seen_at: datetime = Field(sa_type=DateTime(timezone=True))


TABLES = [
    SQLModel.metadata.tables[InspectionsSnapshotRow.__tablename__],
    SQLModel.metadata.tables[InspectionsSnapshotVersionRow.__tablename__],
]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of a carrier's snapshot as kept in the store."""

    content_hash: str
    latest_update: date | None
    first_seen_at: datetime
    last_seen_at: datetime
    snapshot: Snapshot


def _utc(value: datetime) -> datetime:
    """Aware UTC; SQLite gives naive datetimes back, which this store always wrote as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _content_text(snapshot: Snapshot) -> str:
    return json.dumps(snapshot_content(snapshot), sort_keys=True, separators=(",", ":"))


class Store:
    """Change detection for inspections: `upsert` is idempotent (the same fetch again is unchanged)
    and safe against concurrent writers of the same carrier on both databases.
    """

    def __init__(
        self, engine: AsyncEngine, *, oos_rate_change_points: Decimal = DEFAULT_OOS_RATE_CHANGE_POINTS
    ) -> None:
        if oos_rate_change_points <= 0:
            raise ValueError("oos_rate_change_points must be positive")
        self._engine = engine
        self._oos_rate_change_points = oos_rate_change_points

    @classmethod
    async def connect(
        cls, url: str, *, oos_rate_change_points: float | Decimal = DEFAULT_OOS_RATE_CHANGE_POINTS
    ) -> Store:
        """Open the store at `url` and create its tables and the change outbox if missing (idempotent).

        `oos_rate_change_points`: how far a US out-of-service rate must move to be a change fact.
        """
        engine = create_engine(url)
        try:
            await _create_tables(engine)
        except DBAPIError:
            # Two replicas starting together may both try CREATE TABLE on PostgreSQL; the loser retries.
            await _create_tables(engine)
        return cls(engine, oos_rate_change_points=Decimal(str(oos_rate_change_points)))

    async def close(self) -> None:
        await self._engine.dispose()

    async def upsert(self, fetch: InspectionsFetch, *, request_id: UUID) -> Counts:
        """Store one fetch: `inserted` for a carrier seen first, `updated` when the content hash
        differs, `unchanged` when it is the same (the confirmation time advances). Every distinct
        content is kept as a version. A fetch older than the one held never replaces it.

        The change facts against the snapshot held before are recorded for `request_id` in the same
        transaction; the first snapshot of a carrier records none, and neither does the same fetch
        again (a redelivered request records no change twice).
        """
        snapshot = fetch.snapshot
        digest = content_hash(snapshot)
        text = _content_text(snapshot)
        at = _utc(fetch.retrieved_at)
        async with self._engine.begin() as conn:
            # Write first: on SQLite this takes the write lock before the read below, so the read
            # cannot go stale under a concurrent writer.
            await self._keep_version(conn, snapshot, digest, text, at)
            change, held = await self._apply_current(conn, fetch, digest, text, at)
            changes = detect_changes(
                held,
                fetch,
                request_id=request_id,
                observed_at=at,
                oos_rate_change_points=self._oos_rate_change_points,
            )
            await record_changes(conn, changes)
        return counts_for(change)

    async def previous(self, dot: str) -> Snapshot | None:
        """The snapshot held now for `dot` (None if never stored): call it before `upsert` to get
        the "before" side of a change.
        """
        usdot = int(parse_dot(dot))
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(col(InspectionsSnapshotRow.content)).where(
                        col(InspectionsSnapshotRow.usdot) == usdot
                    )
                )
            ).one_or_none()
        return None if row is None else snapshot_from_content(json.loads(row[0]))

    async def versions(self, dot: str) -> list[StoredVersion]:
        """Every distinct snapshot content kept for `dot`, oldest first."""
        usdot = int(parse_dot(dot))
        table = InspectionsSnapshotVersionRow
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        col(table.content_hash),
                        col(table.latest_update),
                        col(table.first_seen_at),
                        col(table.last_seen_at),
                        col(table.content),
                    )
                    .where(col(table.usdot) == usdot)
                    .order_by(col(table.first_seen_at), col(table.content_hash))
                )
            ).all()
        return [
            StoredVersion(
                content_hash=row[0],
                latest_update=row[1],
                first_seen_at=_utc(row[2]),
                last_seen_at=_utc(row[3]),
                snapshot=snapshot_from_content(json.loads(row[4])),
            )
            for row in rows
        ]

    async def _keep_version(
        self, conn: AsyncConnection, snapshot: Snapshot, digest: str, text: str, at: datetime
    ) -> None:
        values = {
            "usdot": snapshot.usdot,
            "content_hash": digest,
            "latest_update": snapshot.latest_update,
            "content": text,
            "first_seen_at": at,
            "last_seen_at": at,
        }
        table = InspectionsSnapshotVersionRow
        if conn.dialect.name == "postgresql":
            pg = postgresql.insert(table).values(values)
            await conn.execute(
                pg.on_conflict_do_update(
                    index_elements=["usdot", "content_hash"],
                    set_={
                        "first_seen_at": func.least(col(table.first_seen_at), pg.excluded.first_seen_at),
                        "last_seen_at": func.greatest(col(table.last_seen_at), pg.excluded.last_seen_at),
                    },
                )
            )
        else:
            lite = sqlite.insert(table).values(values)
            await conn.execute(
                lite.on_conflict_do_update(
                    index_elements=["usdot", "content_hash"],
                    set_={
                        "first_seen_at": func.min(col(table.first_seen_at), lite.excluded.first_seen_at),
                        "last_seen_at": func.max(col(table.last_seen_at), lite.excluded.last_seen_at),
                    },
                )
            )

    async def _apply_current(
        self, conn: AsyncConnection, fetch: InspectionsFetch, digest: str, text: str, at: datetime
    ) -> tuple[Change, InspectionsFetch | None]:
        """Insert or update the current snapshot; return what that did and what was held before it."""
        snapshot = fetch.snapshot
        table = InspectionsSnapshotRow
        values: dict[str, Any] = {
            "content_hash": digest,
            "latest_update": snapshot.latest_update,
            "legal_name": snapshot.legal_name,
            "operating_status": snapshot.operating_status,
            "safety_rating": None if snapshot.safety_rating is None else snapshot.safety_rating.value,
            "content": text,
            "retrieved_at": at,
            "first_seen_at": at,
            "checked_at": at,
        }
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
        # A carrier seen first: insert, unless another writer got there first (then decide below).
        inserted = await conn.execute(
            insert.values(usdot=snapshot.usdot, **values).on_conflict_do_nothing(index_elements=["usdot"])
        )
        if inserted.rowcount == 1:
            return "inserted", None
        held = (
            await conn.execute(
                select(col(table.content_hash), col(table.retrieved_at), col(table.content))
                .where(col(table.usdot) == snapshot.usdot)
                .with_for_update()
            )
        ).one()
        before = _held_fetch(fetch.dot, _utc(held[1]), held[2])
        change = decide_change(held[0], before.retrieved_at, digest, at)
        where = col(table.usdot) == snapshot.usdot
        if change == "updated":
            await conn.execute(update(table).where(where).values(values))
        elif change == "unchanged":
            await conn.execute(
                update(table)
                .where(where)
                .values(
                    retrieved_at=_later(col(table.retrieved_at), at, conn),
                    checked_at=_later(col(table.checked_at), at, conn),
                )
            )
        return change, before


def _held_fetch(dot: str, retrieved_at: datetime, content: str) -> InspectionsFetch:
    """The snapshot held for a carrier as the fetch that last stored or confirmed it."""
    snapshot = snapshot_from_content(json.loads(content))
    as_of = None
    if snapshot.latest_update is not None:
        as_of = datetime.combine(snapshot.latest_update, time(), tzinfo=UTC)
    return InspectionsFetch(dot=dot, retrieved_at=retrieved_at, upstream_as_of=as_of, snapshot=snapshot)


def _later(column: Any, at: datetime, conn: AsyncConnection) -> Any:
    """SQL for the later of a stored time and `at` (GREATEST on PostgreSQL, max() on SQLite)."""
    return func.greatest(column, at) if conn.dialect.name == "postgresql" else func.max(column, at)


async def _create_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all, tables=TABLES)
    await create_outbox(engine)
