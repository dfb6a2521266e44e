"""The inspections store: one current SAFER snapshot per carrier, and every distinct version seen.

Tables: `inspections_snapshot` (one row per usdot: the snapshot held now, its content hash, when it
was first seen and last confirmed) and `inspections_snapshot_version` (one row per distinct content
of a carrier, keyed by usdot and content hash; the hash covers `latest_update`, so this key is the
`(usdot, latest_update, hash)` of the fmcsa README without a nullable key column). Works on SQLite
and PostgreSQL.

The store decides nothing: `upsert` locks the carrier, loads what it holds (`domain.Held`), asks the
pure `domain.plan` what to write, and executes that plan in the same transaction as the plan's change
facts go to the change outbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, Index, Text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from fmcsa_events.identifiers import parse_dot
from fmcsa_events.models import Counts
from fmcsa_source_inspections.domain.changes import (
    DEFAULT_OOS_RATE_CHANGE_POINTS,
    Held,
    HeldSnapshot,
    Seen,
    SnapshotWrite,
    plan,
)
from fmcsa_source_inspections.domain.content import snapshot_content, snapshot_from_content
from fmcsa_source_inspections.domain.records import InspectionsFetch, Snapshot
from fmcsa_source_kit.outbox import record_changes
from fmcsa_source_kit.plan import Plan
from fmcsa_source_kit.tables import open_store, retry_insert_race

"""Two first writes of one carrier may race on PostgreSQL (no row to lock yet): the loser re-plans."""


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

Row = InspectionsSnapshotRow
VersionRow = InspectionsSnapshotVersionRow


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
    """Executes `domain.plan` for each fetch: `upsert` is idempotent (the same fetch again writes
    nothing) and safe against concurrent writers of the same carrier on both databases.
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
        return cls(await open_store(url, TABLES), oos_rate_change_points=Decimal(str(oos_rate_change_points)))

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    async def upsert(self, fetch: InspectionsFetch, *, request_id: UUID) -> Counts:
        """Store one fetch as `domain.plan` decides (inserted, updated or unchanged; every distinct
        content kept as a version; a fetch older than the one held never replaces it), and record the
        plan's change facts for `request_id` in the same transaction.
        """
        dot = str(fetch.snapshot.usdot)
        return await retry_insert_race(
            "inspections_upsert", dot, lambda: self._upsert_once(fetch, request_id)
        )

    async def _upsert_once(self, fetch: InspectionsFetch, request_id: UUID) -> Counts:
        fetch = replace(fetch, retrieved_at=_utc(fetch.retrieved_at))  # SQLite keeps no offset: write UTC
        usdot = fetch.snapshot.usdot
        async with AsyncSession(self._engine, expire_on_commit=False) as session, session.begin():
            # Lock first, read second: on SQLite this write takes the database's write lock before
            # the read (so no read goes stale); on PostgreSQL it locks the carrier's row if there is one.
            await session.exec(
                update(Row)
                .where(col(Row.usdot) == usdot)
                .values(usdot=col(Row.usdot))
                .execution_options(synchronize_session=False)
            )
            held = await _held(session, usdot)
            decided = plan(
                held, fetch, request_id=request_id, oos_rate_change_points=self._oos_rate_change_points
            )
            await self._execute(session, decided)
            await record_changes(await session.connection(), decided.changes)
        return decided.counts

    async def _execute(self, session: AsyncSession, decided: Plan[SnapshotWrite]) -> None:
        """Write what the plan says, nothing more (inspections ages nothing out)."""
        for write in decided.insert:
            session.add(Row(usdot=write.usdot, **_current_values(write)))
        for write in (*decided.update, *decided.touch):
            if write.current is not None:
                await session.exec(
                    update(Row).where(col(Row.usdot) == write.usdot).values(**_current_values(write))
                )
        for write in (*decided.insert, *decided.update, *decided.touch):
            if write.new_version:
                session.add(
                    VersionRow(
                        usdot=write.usdot,
                        content_hash=write.content_hash,
                        latest_update=write.fetch.snapshot.latest_update,
                        content=_content_text(write.fetch.snapshot),
                        first_seen_at=write.version.first_seen_at,
                        last_seen_at=write.version.last_seen_at,
                    )
                )
            else:
                await session.exec(
                    update(VersionRow)
                    .where(
                        col(VersionRow.usdot) == write.usdot,
                        col(VersionRow.content_hash) == write.content_hash,
                    )
                    .values(
                        first_seen_at=write.version.first_seen_at, last_seen_at=write.version.last_seen_at
                    )
                )
        await session.flush()

    async def previous(self, dot: str) -> Snapshot | None:
        """The snapshot held now for `dot` (None if never stored)."""
        async with AsyncSession(self._engine) as session:
            row = await session.get(Row, int(parse_dot(dot)))
        return None if row is None else snapshot_from_content(json.loads(row.content))

    async def versions(self, dot: str) -> list[StoredVersion]:
        """Every distinct snapshot content kept for `dot`, oldest first."""
        async with AsyncSession(self._engine) as session:
            rows = (
                await session.exec(
                    select(VersionRow)
                    .where(col(VersionRow.usdot) == int(parse_dot(dot)))
                    .order_by(col(VersionRow.first_seen_at), col(VersionRow.content_hash))
                )
            ).all()
        return [
            StoredVersion(
                content_hash=row.content_hash,
                latest_update=row.latest_update,
                first_seen_at=_utc(row.first_seen_at),
                last_seen_at=_utc(row.last_seen_at),
                snapshot=snapshot_from_content(json.loads(row.content)),
            )
            for row in rows
        ]


async def _held(session: AsyncSession, usdot: int) -> Held:
    """What the store holds for one carrier: its current snapshot and the seen times of its versions."""
    row = await session.get(Row, usdot)
    seen = (
        await session.exec(
            select(
                col(VersionRow.content_hash), col(VersionRow.first_seen_at), col(VersionRow.last_seen_at)
            ).where(col(VersionRow.usdot) == usdot)
        )
    ).all()
    current = None
    if row is not None:
        current = HeldSnapshot(
            snapshot=snapshot_from_content(json.loads(row.content)),
            content_hash=row.content_hash,
            retrieved_at=_utc(row.retrieved_at),
            first_seen_at=_utc(row.first_seen_at),
            checked_at=_utc(row.checked_at),
        )
    return Held(current, {digest: Seen(_utc(first), _utc(last)) for digest, first, last in seen})


def _current_values(write: SnapshotWrite) -> dict[str, Any]:
    """The current row's columns for a write that sets it."""
    assert write.current is not None
    snapshot = write.fetch.snapshot
    return {
        "content_hash": write.content_hash,
        "latest_update": snapshot.latest_update,
        "legal_name": snapshot.legal_name,
        "operating_status": snapshot.operating_status,
        "safety_rating": None if snapshot.safety_rating is None else snapshot.safety_rating.value,
        "content": _content_text(snapshot),
        "retrieved_at": write.current.retrieved_at,
        "first_seen_at": write.current.first_seen_at,
        "checked_at": write.current.checked_at,
    }
