"""How stale the oldest carrier a source serves is: the age of its oldest successful sync.

Every outcome the runner finishes (`SourceSynced` or `SourceFailed`) writes one row per carrier in the
source's own database: when the carrier was first answered, when last, and when it last ended
`SourceSynced` (a `checked_unchanged` answer counts: the data held was confirmed current). A carrier's
age is `now - last_synced_at`, or `now - first_answered_at` for a carrier that never synced. The worker
exports the largest age, over the carriers answered within `SYNC_AGE_WINDOW_S` (a carrier nobody asks
for any more drops out instead of ageing for ever), as `fmcsa_source_oldest_sync_age_seconds`, and how
many carriers that covers as `fmcsa_source_carriers_tracked`, every `SYNC_AGE_REFRESH_S`.

Replicas of a source share its database, so each exports the same figure.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import Column, DateTime, MetaData, String, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fmcsa_runtime.database import utc_aware

SYNC_AGE_WINDOW_S = 7 * 24 * 3600.0
"""Carriers answered within the last week count: longer than any default interval (csa 6 h, authority
daily), so a carrier that is still scheduled is never left out."""
SYNC_AGE_REFRESH_S = 15.0

OLDEST_SYNC_AGE = Gauge(
    "fmcsa_source_oldest_sync_age_seconds",
    "Age of the oldest successful sync among the carriers this source answered within the last week "
    "(since first answered, for a carrier never synced); 0 when it answered none",
    ["source"],
)
CARRIERS_TRACKED = Gauge(
    "fmcsa_source_carriers_tracked",
    "Carriers this source answered within the last week (what fmcsa_source_oldest_sync_age_seconds covers)",
    ["source"],
)

_metadata = MetaData()
sync_ages = Table(
    "sync_ages",
    _metadata,
    Column("dot", String(8), primary_key=True),
    Column("first_answered_at", DateTime(timezone=True), nullable=False),
    Column("last_answered_at", DateTime(timezone=True), nullable=False),
    Column("last_synced_at", DateTime(timezone=True), nullable=True),
)


class SyncAges:
    """The per-carrier rows behind the oldest-sync-age gauge, in the source's own database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self) -> None:
        async with self._engine.begin() as connection:
            await connection.run_sync(_metadata.create_all)

    async def answered(self, dot: str, at: datetime, *, synced: bool) -> None:
        """Record one finished outcome for `dot` at `at` (`synced`: it was a `SourceSynced`)."""
        values: dict[str, datetime] = {"last_answered_at": at}
        if synced:
            values["last_synced_at"] = at
        for _ in range(2):  # a replica may insert the same new carrier first: then update it
            async with self._engine.begin() as connection:
                changed = await connection.execute(
                    update(sync_ages).where(sync_ages.c.dot == dot).values(values)
                )
                if changed.rowcount:
                    return
                with contextlib.suppress(IntegrityError):
                    async with connection.begin_nested():
                        await connection.execute(
                            insert(sync_ages).values(dot=dot, first_answered_at=at, **values)
                        )
                    return

    async def oldest(self, now: datetime, *, window_s: float = SYNC_AGE_WINDOW_S) -> tuple[float, int]:
        """The largest age in seconds among the carriers answered within `window_s`, and their number."""
        since = sync_ages.c.last_synced_at
        oldest_point = func.min(func.coalesce(since, sync_ages.c.first_answered_at))
        query = select(oldest_point, func.count()).where(
            sync_ages.c.last_answered_at >= now - timedelta(seconds=window_s)
        )
        async with self._engine.connect() as connection:
            point, count = (await connection.execute(query)).one()
        if point is None:
            return 0.0, 0
        if isinstance(point, str):  # SQLite answers an aggregate of datetimes as text
            point = datetime.fromisoformat(point)
        return max(0.0, (now - utc_aware(point)).total_seconds()), int(count)

    async def export(self, source: str, now: datetime) -> None:
        """Set the two gauges for `source` from the rows."""
        age, count = await self.oldest(now)
        OLDEST_SYNC_AGE.labels(source).set(age)
        CARRIERS_TRACKED.labels(source).set(count)
