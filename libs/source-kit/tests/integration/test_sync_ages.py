"""The age of a source's oldest successful sync: its rows, on SQLite and PostgreSQL (the runner feeding
the gauge is tested in test_runner.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fmcsa_runtime.database import create_engine
from fmcsa_source_kit.sync_ages import SYNC_AGE_WINDOW_S, SyncAges

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_the_oldest_age_is_the_stalest_carrier_still_answered(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        ages = SyncAges(engine)
        await ages.create()
        assert await ages.oldest(T0) == (0.0, 0)
        await ages.answered("1", T0, synced=True)
        await ages.answered("2", T0 + timedelta(hours=1), synced=True)
        assert await ages.oldest(T0 + timedelta(hours=2)) == (7200.0, 2)
        # carrier 1 fails from now on: its age keeps running from its last success
        await ages.answered("1", T0 + timedelta(hours=3), synced=False)
        await ages.answered("2", T0 + timedelta(hours=3), synced=True)
        assert await ages.oldest(T0 + timedelta(hours=4)) == (4 * 3600.0, 2)
        # a carrier that never synced ages from when it was first answered
        await ages.answered("3", T0 + timedelta(minutes=30), synced=False)
        assert await ages.oldest(T0 + timedelta(hours=4)) == (4 * 3600.0, 3)
        await ages.answered("1", T0 + timedelta(hours=4), synced=True)
        assert await ages.oldest(T0 + timedelta(hours=5)) == (4.5 * 3600.0, 3)
        # nobody asks for 3 any more: after the window it drops out instead of ageing for ever
        later = T0 + timedelta(minutes=30, seconds=SYNC_AGE_WINDOW_S + 1)
        await ages.answered("1", later, synced=True)
        await ages.answered("2", later, synced=True)
        assert await ages.oldest(later) == (0.0, 2)
    finally:
        await engine.dispose()
