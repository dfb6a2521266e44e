"""The guard against bad answers: an answer that would drop most of what the store holds for a carrier
is not trusted at once.

A valid but empty page (a Socrata hiccup answering 0 rows) would otherwise age out every violation a
carrier has and publish a change fact, and a webhook, for each. So a source's store, after planning a
fetch and before executing the plan, asks `check_drop` with what it holds and what the plan would drop:

- **Not suspect** (`DropGuard.suspect`: nothing dropped, or less than `share` of at least `min_held`
  rows): the plan is executed; a suspicion left by an earlier answer is cleared.
- **Suspect, first time:** the transaction is rolled back (the store keeps what it had, no change fact
  is recorded), the suspicion is remembered in `suspect_drops` (its own transaction) and the request
  fails retryably with `suspect_drop`, its counts in the message: the runner reports the attempt
  (`SyncAttemptFailed`) and hands the request back to the bus, so the next fetch comes within the
  retry delay.
- **Suspect again** (a suspicion is remembered for the carrier: two answers in a row agree): the drop
  is confirmed, the plan executed, its change facts published, the suspicion cleared (logged as
  `suspect_drop_confirmed` with the counts).

Everything held gone counts as suspect whatever `min_held` (every BASIC gone, an authority vanishing).
The thresholds are each guarded source's settings (`DropGuardSettings`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.database import upsert_insert
from fmcsa_source_kit.failures import Failure

log = structlog.get_logger(__name__)

_metadata = MetaData()
suspect_drops = Table(
    "suspect_drops",
    _metadata,
    Column("dot_number", Integer, primary_key=True),
    Column("held", Integer, nullable=False),
    Column("dropped", Integer, nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)


class DropGuardSettings(BaseSettings):
    """The guard's thresholds, mixed into the settings of each source whose plans drop rows."""

    suspect_drop_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="An answer that would drop at least this share of the rows held for a carrier is "
        "suspect: kept back until the next fetch confirms it.",
    )
    suspect_drop_min_held: int = Field(
        20,
        ge=1,
        description="Rows a carrier must hold before a partial drop is judged (a drop of everything held "
        "always is).",
    )

    def drop_guard(self) -> DropGuard:
        return DropGuard(share=self.suspect_drop_share, min_held=self.suspect_drop_min_held)


@dataclass(frozen=True, slots=True)
class DropGuard:
    share: float = 0.5
    min_held: int = 20

    def suspect(self, *, held: int, dropped: int) -> bool:
        """Whether an answer dropping `dropped` of the `held` rows is too much to trust at once."""
        if held <= 0 or dropped <= 0:
            return False
        if dropped >= held:
            return True
        return held >= self.min_held and dropped / held >= self.share


class SuspectDrop(Exception):
    """Raised inside a store's transaction (rolls it back) when an answer is suspect the first time."""

    def __init__(self, dot: str, held: int, dropped: int, what: str) -> None:
        super().__init__(dot, held, dropped, what)
        self.dot, self.held, self.dropped, self.what = dot, held, dropped, what

    def failure(self) -> Failure:
        return Failure(
            ErrorKind.SUSPECT_DROP,
            retryable=True,
            message=f"the answer would drop {self.dropped:,} of the {self.held:,} {self.what} held; "
            "kept what was held until the next fetch confirms or clears it",
        )


async def create_suspect_drops(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_metadata.create_all)


async def check_drop(
    connection: AsyncConnection, guard: DropGuard, *, dot: str, held: int, dropped: int, what: str
) -> bool:
    """Inside the store's transaction, after planning: return to execute the plan (True when it is a
    drop an earlier answer already showed, now confirmed; a suspicion left from before is cleared either
    way); raise `SuspectDrop` for a first suspect answer (see the module docstring).
    """
    mine = suspect_drops.c.dot_number == int(dot)
    remembered = (await connection.execute(select(suspect_drops.c.dot_number).where(mine))).first()
    if remembered is not None:
        await connection.execute(delete(suspect_drops).where(mine))
    if not guard.suspect(held=held, dropped=dropped):
        return False
    if remembered is None:
        raise SuspectDrop(dot, held, dropped, what)
    log.info("suspect_drop_confirmed", held=held, dropped=dropped)
    return True


@asynccontextmanager
async def guarded(engine: AsyncEngine, *, request_id: UUID, at: datetime) -> AsyncIterator[None]:
    """Around a store's transaction: a `SuspectDrop` raised in it (the transaction rolled back) is
    remembered, then passed on to the adapter, which answers it as a retryable `suspect_drop`.
    """
    try:
        yield
    except SuspectDrop as drop:
        await remember_suspicion(engine, drop, request_id=request_id, at=at)
        log.info("suspect_drop_held", held=drop.held, dropped=drop.dropped)
        raise


async def remember_suspicion(
    engine: AsyncEngine, drop: SuspectDrop, *, request_id: UUID, at: datetime
) -> None:
    """Record a first suspect answer (its own transaction, after the store's was rolled back)."""
    row = {
        "dot_number": int(drop.dot),
        "held": drop.held,
        "dropped": drop.dropped,
        "request_id": str(request_id),
        "seen_at": at,
    }
    async with engine.begin() as connection:
        insert = upsert_insert(connection.dialect, suspect_drops).values(row)
        await connection.execute(insert.on_conflict_do_update(index_elements=["dot_number"], set_=row))
