"""What a source remembers of each carrier's last successful fetch, in its own database: `fetch_marks`.

One row per carrier, written by the kit's `ClientStoreAdapter` after the store committed a fetch: when it
was retrieved, the upstream as-of it carried, and the upstream publication seen just before it (csa:
the SMS dataset's `rowsUpdatedAt`; None when it was not asked or could not tell). Replicas of a source
share its database, so every replica skips a carrier any of them fetched, and a restart keeps it.

The row is written in its own transaction right after the store's: a plan's transaction belongs to each
source's store, and a crash between the two costs one more fetch of that carrier, never a wrong skip (a
mark is only ever written for data the store already holds). Two replicas fetching one carrier at once
write the mark in either order; an older mark winning only costs a fetch too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fmcsa_runtime.database import upsert_insert, utc_aware

_metadata = MetaData()
fetch_marks = Table(
    "fetch_marks",
    _metadata,
    Column("dot", String(8), primary_key=True),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    Column("upstream_as_of", DateTime(timezone=True), nullable=True),
    Column("published_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True, slots=True)
class FetchMark:
    """A carrier's last successful fetch: when retrieved, its upstream as-of, and the publication seen
    just before it (None: not asked, or the check could not tell).
    """

    fetched_at: datetime
    upstream_as_of: datetime | None = None
    published_at: datetime | None = None


class FetchMarks:
    """The `fetch_marks` rows of a source's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self) -> None:
        async with self._engine.begin() as connection:
            await connection.run_sync(_metadata.create_all)

    async def get(self, dot: str) -> FetchMark | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        fetch_marks.c.fetched_at, fetch_marks.c.upstream_as_of, fetch_marks.c.published_at
                    ).where(fetch_marks.c.dot == dot)
                )
            ).first()
        if row is None:
            return None
        fetched_at = utc_aware(row.fetched_at)
        as_of, published = row.upstream_as_of, row.published_at
        return FetchMark(
            fetched_at, utc_aware(as_of) if as_of else None, utc_aware(published) if published else None
        )

    async def remember(self, dot: str, mark: FetchMark) -> None:
        """Record `mark` as `dot`'s last successful fetch. A mark without a publication keeps the one
        remembered: the new fetch came after it, so its data is at least that recent.
        """
        row = {
            "dot": dot,
            "fetched_at": mark.fetched_at,
            "upstream_as_of": mark.upstream_as_of,
            "published_at": mark.published_at,
        }
        update = {k: v for k, v in row.items() if k != "dot" and (k != "published_at" or v is not None)}
        async with self._engine.begin() as connection:
            statement = upsert_insert(connection.dialect, fetch_marks).values(row)
            await connection.execute(statement.on_conflict_do_update(index_elements=["dot"], set_=update))
