"""The authority store: per DOT the profile held now, its dockets and its insurance filings.

Tables (SQLite or PostgreSQL): `authority_carrier` (one row per DOT), `authority_docket` (per DOT and
docket), `authority_filing` (per DOT and filing subject). `upsert` loads what is held for the DOT, asks
the pure `domain.plan` what to do, and executes the plan and records its change facts in the change
outbox in ONE transaction: both are stored or neither. Two writers racing on a new key: the loser
retries and plans again against the winner's rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime
from sqlmodel import Field, SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from fmcsa_events.models import Counts
from fmcsa_runtime.database import utc_aware
from fmcsa_source_authority.domain import (
    AuthorityFetch,
    AuthorityStatus,
    Docket,
    Filing,
    Held,
    OosOrder,
    Profile,
    Row,
    plan,
)
from fmcsa_source_kit.guard import check_drop, guarded
from fmcsa_source_kit.outbox import record_changes
from fmcsa_source_kit.plan import Observation, Plan
from fmcsa_source_kit.tables import GuardedStore, retry_insert_race


def _moment() -> Any:
    return Field(sa_type=DateTime(timezone=True))


class AuthorityCarrier(SQLModel, table=True):
    """The profile held now for one DOT: statuses, insurance amounts (dollars), the current OOS order."""

    __tablename__ = "authority_carrier"

    dot: str = Field(primary_key=True, max_length=8)
    common: str | None = Field(default=None, max_length=20)
    contract: str | None = Field(default=None, max_length=20)
    broker: str | None = Field(default=None, max_length=20)
    bipd_required: int | None = Field(default=None, sa_column=Column(BigInteger))
    bipd_on_file: int | None = Field(default=None, sa_column=Column(BigInteger))
    cargo_on_file: int | None = Field(default=None, sa_column=Column(BigInteger))
    bond_on_file: int | None = Field(default=None, sa_column=Column(BigInteger))
    oos_date: date | None = None
    oos_reason: str | None = None
    first_seen_at: datetime = _moment()
    changed_at: datetime = _moment()


class AuthorityDocket(SQLModel, table=True):
    __tablename__ = "authority_docket"

    dot: str = Field(primary_key=True, max_length=8)
    docket: str = Field(primary_key=True, max_length=20)
    first_seen_at: datetime = _moment()


class AuthorityFiling(SQLModel, table=True):
    """One insurance filing per (DOT, subject); `cancelled`: its cancellation date had been reached."""

    __tablename__ = "authority_filing"

    dot: str = Field(primary_key=True, max_length=8)
    subject: str = Field(primary_key=True, max_length=80)
    kind: str = Field(max_length=40)
    form: str | None = None
    insurer: str | None = None
    policy_number: str | None = None
    coverage: int | None = Field(default=None, sa_column=Column(BigInteger))
    effective: date | None = None
    cancellation: date | None = None
    docket: str | None = None
    transacted: date | None = None
    cancelled: bool = False
    first_seen_at: datetime = _moment()
    changed_at: datetime = _moment()


TABLES = [
    SQLModel.metadata.tables[name] for name in ("authority_carrier", "authority_docket", "authority_filing")
]


def _status(value: str | None) -> AuthorityStatus | None:
    return None if value is None else AuthorityStatus(value)


def _profile(row: AuthorityCarrier) -> Profile:
    order = None if row.oos_date is None else OosOrder(row.oos_date, row.oos_reason)
    return Profile(
        dot=row.dot,
        common=_status(row.common),
        contract=_status(row.contract),
        broker=_status(row.broker),
        bipd_required=row.bipd_required,
        bipd_on_file=row.bipd_on_file,
        cargo_on_file=row.cargo_on_file,
        bond_on_file=row.bond_on_file,
        oos_order=order,
    )


def _filing(row: AuthorityFiling) -> Filing:
    return Filing(
        dot=row.dot,
        kind=row.kind,
        form=row.form,
        insurer=row.insurer,
        policy_number=row.policy_number,
        coverage=row.coverage,
        effective=row.effective,
        cancellation=row.cancellation,
        docket=row.docket,
        transacted=row.transacted,
        cancelled=row.cancelled,
    )


def _values(row: Row) -> dict[str, Any]:
    """The columns a plan's row sets (timestamps apart)."""
    if isinstance(row, Profile):
        order = row.oos_order
        statuses = {
            t: None if s is None else s.value
            for t, s in (("common", row.common), ("contract", row.contract), ("broker", row.broker))
        }
        return {
            "dot": row.dot,
            **statuses,
            "bipd_required": row.bipd_required,
            "bipd_on_file": row.bipd_on_file,
            "cargo_on_file": row.cargo_on_file,
            "bond_on_file": row.bond_on_file,
            "oos_date": None if order is None else order.day,
            "oos_reason": None if order is None else order.reason,
        }
    if isinstance(row, Docket):
        return {"dot": row.dot, "docket": row.docket}
    return {
        "dot": row.dot,
        "subject": row.subject,
        "kind": row.kind,
        "form": row.form,
        "insurer": row.insurer,
        "policy_number": row.policy_number,
        "coverage": row.coverage,
        "effective": row.effective,
        "cancellation": row.cancellation,
        "docket": row.docket,
        "transacted": row.transacted,
        "cancelled": row.cancelled,
    }


_TABLE_OF: dict[type, type[SQLModel]] = {
    Profile: AuthorityCarrier,
    Docket: AuthorityDocket,
    Filing: AuthorityFiling,
}


def _keyed(row: Row) -> tuple[type[SQLModel], dict[str, Any]]:
    """The table of a plan's row and the values of its primary key."""
    table = _TABLE_OF[type(row)]
    values = _values(row)
    return table, {column.name: values[column.name] for column in table.__table__.primary_key}  # type: ignore[attr-defined]


class Store(GuardedStore):
    """The authority tables; `upsert` executes what `domain.plan` decides."""

    TABLES = TABLES

    async def held(self, dot: str) -> Held:
        """What is held for one DOT (a `Held()` for a carrier never fetched)."""
        async with AsyncSession(self._engine, expire_on_commit=False) as session:
            return await self._held(session, dot)

    async def _held(self, session: AsyncSession, dot: str) -> Held:
        # PostgreSQL: lock the carrier's row so a concurrent upsert plans after this one
        carrier = await session.get(AuthorityCarrier, dot, with_for_update=True)
        dockets = (await session.exec(select(AuthorityDocket).where(col(AuthorityDocket.dot) == dot))).all()
        filings = (await session.exec(select(AuthorityFiling).where(col(AuthorityFiling.dot) == dot))).all()
        return Held(
            profile=None if carrier is None else _profile(carrier),
            dockets=tuple(sorted((Docket(d.dot, d.docket) for d in dockets), key=lambda d: d.docket)),
            filings=tuple(sorted((_filing(f) for f in filings), key=lambda f: f.subject)),
        )

    async def upsert(self, fetch: AuthorityFetch, *, request_id: UUID) -> Counts:
        """Plan and store one fetch with its change facts for `request_id` (module docstring)."""
        seen = Observation(request_id, fetch.dot, utc_aware(fetch.retrieved_at), fetch.upstream_as_of)
        return await retry_insert_race("authority_upsert", fetch.dot, lambda: self._upsert_once(fetch, seen))

    async def _upsert_once(self, fetch: AuthorityFetch, seen: Observation) -> Counts:
        request_id = seen.request_id
        async with (
            guarded(self._engine, request_id=request_id, at=seen.observed_at),
            AsyncSession(self._engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            held = await self._held(session, fetch.dot)
            planned = plan(held, fetch, seen)
            # the profile is in every answer: what can vanish is the dockets and the filings
            await check_drop(
                await session.connection(),
                self._guard,
                dot=fetch.dot,
                held=len(held.dockets) + len(held.filings),
                dropped=len(planned.age_out),
                what="docket numbers and insurance filings",
            )
            await self._execute(session, planned, seen.observed_at)
            await record_changes(await session.connection(), planned.changes)
        return planned.counts

    @staticmethod
    async def _execute(session: AsyncSession, planned: Plan[Row], at: datetime) -> None:
        for row in planned.age_out:
            table, key = _keyed(row)
            await session.exec(delete(table).where(*(getattr(table, k) == v for k, v in key.items())))
        for row in planned.insert:
            table = _TABLE_OF[type(row)]
            stamps = {"first_seen_at": at} | ({} if isinstance(row, Docket) else {"changed_at": at})
            session.add(table(**_values(row), **stamps))
        for row in planned.update:
            table, key = _keyed(row)
            held = await session.get(table, key)
            assert held is not None, "a planned update is of a held row"
            for name, value in _values(row).items():
                setattr(held, name, value)
            if hasattr(held, "changed_at"):
                held.changed_at = at
            session.add(held)
        await session.flush()
