"""The fetch marks (`fmcsa_source_kit.marks`) on SQLite and PostgreSQL: a carrier's last successful fetch,
read back aware; a later fetch made without a publication check keeps the publication remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.marks import FetchMark, FetchMarks

T = datetime(2026, 11, 13, 14, 30, tzinfo=UTC)


async def test_a_mark_is_read_back_and_a_fetch_without_a_publication_keeps_the_one_seen(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        marks = FetchMarks(engine)
        await marks.create()
        assert await marks.get("2847193") is None
        await marks.remember("2847193", FetchMark(T, T - timedelta(days=20), T - timedelta(days=2)))
        assert await marks.get("2847193") == FetchMark(T, T - timedelta(days=20), T - timedelta(days=2))

        later = T + timedelta(hours=6)
        await marks.remember("2847193", FetchMark(later, T - timedelta(days=19), None))
        assert await marks.get("2847193") == FetchMark(later, T - timedelta(days=19), T - timedelta(days=2))
        assert await marks.get("1000001") is None
    finally:
        await engine.dispose()
