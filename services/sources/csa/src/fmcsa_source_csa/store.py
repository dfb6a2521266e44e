"""The csa store: current carrier facts and BASIC scores per DOT, and every version ever seen.

Tables (SQLite or PostgreSQL): `csa_carrier` (one row per DOT), `csa_basic` (one row per (DOT,
basicsId)), and their histories `csa_carrier_history` / `csa_basic_history`, one row per (key,
`upstream_as_of` month, content hash) with when it was first and last seen: "what the public record
said for month X, and when we looked" survives the upstream.

`upsert` decides nothing itself: it loads what is held for the DOT (`Held`, locking the carrier's row on
PostgreSQL), asks the pure `domain.plan` what the fetch inserts, updates and ages out and which change
facts it causes (the rules are in `domain/changes.py`), and executes that plan in one transaction with
the change outbox (`record_changes`): rows and change facts are stored together or not at all. Then it
records that every fetched record was seen: a current row seen no later than this fetch moves its
`last_seen_at`, as-of month and labels forward (a `WHERE last_seen_at <= :at` guard, so rows only move
forward in time), and the history keeps one row per version, widening its first and last seen.
The counts it returns are the plan's (`fetched = BASICs + 1`); a redelivered request writes nothing new
and records no change twice.

Numbers are exact: a BASIC's `percentile` and `measure` are stored as the canonical text of the
Decimal the upstream sent (`fmcsa_events.decimals.text`, VARCHAR(70), TEXT affinity on SQLite, so
SQLite never turns them into a float), and the carrier's OOS rates as strings inside `facts`. What
is read back equals what was parsed, digit for digit (38 decimals and more). `connect` migrates a
store made before this: on PostgreSQL it widens the VARCHAR(40) columns (`widen_decimal_columns`);
an old SQLite file needs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import structlog
from sqlalchemy import Connection, DateTime, Index, Table, Text, UniqueConstraint, case, inspect, update
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from fmcsa_events import decimals
from fmcsa_events.decimals import MAX_TEXT_LENGTH
from fmcsa_events.models import Counts
from fmcsa_runtime.database import upsert_insert, utc_aware
from fmcsa_source_csa.domain.changes import Held, HeldBasic, Record, plan
from fmcsa_source_csa.domain.model import (
    BasicScore,
    CarrierFacts,
    CsaFetch,
    Flag,
    FlagReason,
    PercentileStatus,
    carrier_from_content,
)
from fmcsa_source_csa.domain.parse import as_of_month
from fmcsa_source_kit.guard import check_drop, guarded
from fmcsa_source_kit.outbox import record_changes
from fmcsa_source_kit.plan import Observation, Plan
from fmcsa_source_kit.tables import GuardedStore, retry_insert_race

log = structlog.get_logger(__name__)


class CsaCarrier(SQLModel, table=True):
    """The carrier facts held now for one DOT (`facts`: canonical JSON of `CarrierFacts`)."""

    __tablename__ = "csa_carrier"

    dot: str = Field(primary_key=True, max_length=8)
    legal_name: str | None = None
    safety_rating: str | None = Field(default=None, max_length=1)
    allowed_to_operate: bool | None = None
    facts: str = Field(sa_type=Text)
    content_hash: str = Field(max_length=64)
    upstream_as_of: datetime = Field(sa_type=DateTime(timezone=True))
    first_seen_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_seen_at: datetime = Field(sa_type=DateTime(timezone=True))
    changed_at: datetime = Field(sa_type=DateTime(timezone=True))


class CsaCarrierHistory(SQLModel, table=True):
    """Every version of a carrier's facts, once per (DOT, as-of month, content hash)."""

    __tablename__ = "csa_carrier_history"
    __table_args__ = (
        UniqueConstraint("dot", "upstream_as_of", "content_hash", name="uq_csa_carrier_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dot: str = Field(max_length=8, index=True)
    upstream_as_of: datetime = Field(sa_type=DateTime(timezone=True))
    content_hash: str = Field(max_length=64)
    facts: str = Field(sa_type=Text)
    first_seen_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_seen_at: datetime = Field(sa_type=DateTime(timezone=True))


class _BasicColumns(SQLModel):
    """The normalized BASIC fields, as stored (Decimals as canonical strings)."""

    code: str | None = None
    name: str | None = None
    percentile: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    percentile_status: str = Field(max_length=20)
    measure: str | None = Field(default=None, max_length=MAX_TEXT_LENGTH)
    threshold: int | None = None
    intervention_alert: bool | None = None
    intervention_alert_reason: str | None = Field(default=None, max_length=20)
    on_road_alert: bool | None = None
    on_road_alert_reason: str | None = Field(default=None, max_length=20)
    serious_violation: bool | None = None
    serious_violation_reason: str | None = Field(default=None, max_length=20)
    inspections_with_violation: int | None = None
    violations: int | None = None
    run_date: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    content_hash: str = Field(max_length=64)
    upstream_as_of: datetime = Field(sa_type=DateTime(timezone=True))
    first_seen_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_seen_at: datetime = Field(sa_type=DateTime(timezone=True))


class CsaBasic(_BasicColumns, table=True):
    """The BASIC score held now, one row per (DOT, basicsId)."""

    __tablename__ = "csa_basic"

    dot: str = Field(primary_key=True, max_length=8)
    basics_id: int = Field(primary_key=True)
    changed_at: datetime = Field(sa_type=DateTime(timezone=True))
    absent_since: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class CsaBasicHistory(_BasicColumns, table=True):
    """Every version of a BASIC score, once per (DOT, basicsId, as-of month, content hash)."""

    __tablename__ = "csa_basic_history"
    __table_args__ = (
        UniqueConstraint("dot", "basics_id", "upstream_as_of", "content_hash", name="uq_csa_basic_version"),
        Index("ix_csa_basic_history_dot_basic", "dot", "basics_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dot: str = Field(max_length=8)
    basics_id: int


TABLE_NAMES = ("csa_carrier", "csa_carrier_history", "csa_basic", "csa_basic_history")
TABLES = [SQLModel.metadata.tables[name] for name in TABLE_NAMES]


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else decimals.text(value)


DECIMAL_COLUMNS: Final = {
    "csa_basic": ("percentile", "measure"),
    "csa_basic_history": ("percentile", "measure"),
}
"""Columns holding the canonical text of a Decimal (`decimals.text`), VARCHAR(40) before exact numbers."""


def widen_decimal_columns(connection: Connection) -> list[str]:
    """Migrate a store made before exact numbers: widen its decimal columns to `MAX_TEXT_LENGTH`.

    PostgreSQL enforces VARCHAR(40), too short for a 38-decimal value; widening a VARCHAR is a
    catalog change there (no table rewrite). SQLite never enforces a VARCHAR length, so an old
    SQLite file needs nothing. Returns the `table.column` names altered (none the second time).
    """
    if connection.dialect.name != "postgresql":
        return []
    inspector = inspect(connection)
    altered = []
    for table, names in DECIMAL_COLUMNS.items():
        for column in inspector.get_columns(table):
            length = getattr(column["type"], "length", None)
            if column["name"] in names and length is not None and length < MAX_TEXT_LENGTH:
                alter = f"ALTER TABLE {table} ALTER COLUMN {column['name']} TYPE VARCHAR({MAX_TEXT_LENGTH})"
                connection.execute(sql_text(alter))
                altered.append(f"{table}.{column['name']}")
    return altered


def _basic_values(basic: BasicScore) -> dict[str, Any]:
    return {
        "code": basic.code,
        "name": basic.name,
        "percentile": _decimal_text(basic.percentile),
        "percentile_status": basic.percentile_status.value,
        "measure": _decimal_text(basic.measure),
        "threshold": basic.threshold,
        "intervention_alert": basic.intervention_alert.value,
        "intervention_alert_reason": _reason(basic.intervention_alert),
        "on_road_alert": basic.on_road_alert.value,
        "on_road_alert_reason": _reason(basic.on_road_alert),
        "serious_violation": basic.serious_violation.value,
        "serious_violation_reason": _reason(basic.serious_violation),
        "inspections_with_violation": basic.inspections_with_violation,
        "violations": basic.violations,
        "run_date": basic.run_date,
        "content_hash": basic.content_hash(),
    }


def _reason(flag: Flag) -> str | None:
    return flag.reason.value if flag.reason else None


def _flag(value: bool | None, reason: str | None) -> Flag:
    return Flag(value, FlagReason(reason) if reason else None)


def basic_from_row(row: _BasicColumns, basics_id: int) -> BasicScore:
    """Rebuild the domain value of a stored BASIC row."""
    return BasicScore(
        basics_id=basics_id,
        code=row.code,
        name=row.name,
        percentile=Decimal(row.percentile) if row.percentile is not None else None,
        percentile_status=PercentileStatus(row.percentile_status),
        measure=Decimal(row.measure) if row.measure is not None else None,
        threshold=row.threshold,
        intervention_alert=_flag(row.intervention_alert, row.intervention_alert_reason),
        on_road_alert=_flag(row.on_road_alert, row.on_road_alert_reason),
        serious_violation=_flag(row.serious_violation, row.serious_violation_reason),
        inspections_with_violation=row.inspections_with_violation,
        violations=row.violations,
        run_date=utc_aware(row.run_date) if row.run_date else None,
    )


def _migrate(connection: Connection) -> None:
    """Widen a store made before exact decimals (PostgreSQL VARCHAR(40) columns)."""
    if altered := widen_decimal_columns(connection):
        log.info("csa_store_migrated", widened=altered)


class Store(GuardedStore):
    """The csa source's database; one per process, safe for concurrent upserts of different DOTs."""

    TABLES = TABLES
    MIGRATE = _migrate

    async def upsert(self, fetch: CsaFetch, *, request_id: UUID) -> Counts:
        """Store one fetch and its change facts for `request_id` (see the module docstring); return what
        it did to each record. A redelivered request records no change twice (same event ids).
        """
        return await retry_insert_race("csa_upsert", fetch.dot, lambda: self._upsert_once(fetch, request_id))

    async def _upsert_once(self, fetch: CsaFetch, request_id: UUID) -> Counts:
        at = utc_aware(fetch.retrieved_at)
        as_of = utc_aware(fetch.upstream_as_of) if fetch.upstream_as_of else as_of_month(at)
        seen = Observation(request_id=request_id, dot=fetch.dot, observed_at=at, upstream_as_of=as_of)
        async with (
            guarded(self._engine, request_id=request_id, at=at),
            AsyncSession(self._engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            # PostgreSQL: lock the carrier's row so a concurrent upsert reads "held" after this one
            carrier = await session.get(CsaCarrier, fetch.dot, with_for_update=True)
            basics = {
                row.basics_id: row
                for row in (await session.exec(select(CsaBasic).where(col(CsaBasic.dot) == fetch.dot))).all()
            }
            planned = plan(_held(fetch.dot, carrier, basics.values()), fetch, seen)
            present = sum(row.absent_since is None for row in basics.values())
            await check_drop(
                await session.connection(),
                self._guard,
                dot=fetch.dot,
                held=present,
                dropped=len(planned.age_out),
                what="BASICs",
            )
            await self._write_carrier(session, fetch.dot, planned, carrier, at, as_of)
            await self._write_basics(session, fetch.dot, planned, basics, at, as_of)
            await session.flush()
            await self._record_sightings(session, fetch, at, as_of)
            await record_changes(await session.connection(), planned.changes)
        return planned.counts

    async def _write_carrier(
        self,
        session: AsyncSession,
        dot: str,
        planned: Plan[Record],
        row: CsaCarrier | None,
        at: datetime,
        as_of: datetime,
    ) -> None:
        for facts in planned.insert:
            if isinstance(facts, CarrierFacts):
                values = _carrier_values(facts)
                session.add(
                    CsaCarrier(
                        dot=dot,
                        upstream_as_of=as_of,
                        first_seen_at=at,
                        last_seen_at=at,
                        changed_at=at,
                        **values,
                    )
                )
        for facts in planned.update:
            if isinstance(facts, CarrierFacts) and row is not None:
                for key, value in _carrier_values(facts).items():
                    setattr(row, key, value)
                row.upstream_as_of, row.last_seen_at, row.changed_at = as_of, at, at

    async def _write_basics(
        self,
        session: AsyncSession,
        dot: str,
        planned: Plan[Record],
        rows: Mapping[int, CsaBasic],
        at: datetime,
        as_of: datetime,
    ) -> None:
        for basic in planned.insert:
            if isinstance(basic, BasicScore):
                session.add(
                    CsaBasic(
                        dot=dot,
                        basics_id=basic.basics_id,
                        upstream_as_of=as_of,
                        first_seen_at=at,
                        last_seen_at=at,
                        changed_at=at,
                        **_basic_values(basic),
                    )
                )
        for basic in planned.update:
            if isinstance(basic, BasicScore):
                row = rows[basic.basics_id]
                for key, value in _basic_values(basic).items():
                    setattr(row, key, value)
                row.upstream_as_of, row.last_seen_at, row.changed_at, row.absent_since = as_of, at, at, None
        for gone in planned.age_out:
            if isinstance(gone, BasicScore):
                rows[gone.basics_id].absent_since = at

    async def _record_sightings(
        self, session: AsyncSession, fetch: CsaFetch, at: datetime, as_of: datetime
    ) -> None:
        """Every record of the fetch was seen at `at`: a current row seen no later moves its
        `last_seen_at`, as-of month and (BASICs) labels forward (a row seen later keeps them: rows only
        move forward in time), and the history keeps each version once (`_keep_versions`).
        """
        dot = fetch.dot
        connection = await session.connection()
        await connection.execute(
            update(CsaCarrier)
            .where(col(CsaCarrier.dot) == dot, col(CsaCarrier.last_seen_at) <= at)
            .values(upstream_as_of=as_of, last_seen_at=at)
        )
        for basic in fetch.basics:
            await connection.execute(
                update(CsaBasic)
                .where(
                    col(CsaBasic.dot) == dot,
                    col(CsaBasic.basics_id) == basic.basics_id,
                    col(CsaBasic.last_seen_at) <= at,
                )
                .values(code=basic.code, name=basic.name, upstream_as_of=as_of, last_seen_at=at)
            )
        seen = {"upstream_as_of": as_of, "first_seen_at": at, "last_seen_at": at}
        carrier = _carrier_values(fetch.carrier)
        version = {"dot": dot, "content_hash": carrier["content_hash"], "facts": carrier["facts"], **seen}
        await _keep_versions(connection, "csa_carrier_history", [version])
        versions = [{"dot": dot, "basics_id": b.basics_id, **_basic_values(b), **seen} for b in fetch.basics]
        await _keep_versions(connection, "csa_basic_history", versions)

    async def previous(self, dot: str) -> CsaFetch | None:
        """Return what is held for `dot` now (call before `upsert` to diff), or None if nothing is.

        BASICs marked absent are left out; `retrieved_at` is when the carrier was last seen.
        """
        async with AsyncSession(self._engine, expire_on_commit=False) as session:
            carrier = await session.get(CsaCarrier, dot)
            rows: Sequence[CsaBasic] = (
                await session.exec(select(CsaBasic).where(col(CsaBasic.dot) == dot))
            ).all()
        held = _held(dot, carrier, rows)
        return held.as_fetch() if held is not None else None


async def _keep_versions(connection: AsyncConnection, name: str, rows: list[dict[str, Any]]) -> None:
    """Insert each version once (its table's unique key: DOT, basicsId, month, hash); a version seen
    before widens its first and last seen to include this sighting.
    """
    if not rows:
        return
    table = SQLModel.metadata.tables[name]
    key = [column.name for column in _version_key(table).columns]
    statement = upsert_insert(connection.dialect, table)
    new, held = statement.excluded, table.c
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=key,
            set_={
                "first_seen_at": case(
                    (new.first_seen_at < held.first_seen_at, new.first_seen_at), else_=held.first_seen_at
                ),
                "last_seen_at": case(
                    (new.last_seen_at > held.last_seen_at, new.last_seen_at), else_=held.last_seen_at
                ),
            },
        ),
        rows,
    )


def _version_key(table: Table) -> UniqueConstraint:
    return next(c for c in table.constraints if isinstance(c, UniqueConstraint))


def _carrier_values(facts: CarrierFacts) -> dict[str, Any]:
    return {
        "legal_name": facts.legal_name,
        "safety_rating": facts.safety_rating.value if facts.safety_rating else None,
        "allowed_to_operate": facts.allowed_to_operate,
        "facts": json.dumps(facts.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        "content_hash": facts.content_hash(),
    }


def _held(dot: str, carrier: CsaCarrier | None, rows: Iterable[CsaBasic]) -> Held | None:
    """What the store holds for `dot` (None without a carrier row), absent BASICs included."""
    if carrier is None:
        return None
    return Held(
        dot=dot,
        carrier=carrier_from_content(json.loads(carrier.facts)),
        carrier_hash=carrier.content_hash,
        last_seen_at=utc_aware(carrier.last_seen_at),
        upstream_as_of=utc_aware(carrier.upstream_as_of),
        basics={
            row.basics_id: HeldBasic(
                score=basic_from_row(row, row.basics_id),
                content_hash=row.content_hash,
                last_seen_at=utc_aware(row.last_seen_at),
                absent_since=utc_aware(row.absent_since) if row.absent_since else None,
            )
            for row in rows
        },
    )
