"""The authority store on SQLite and PostgreSQL: two writers racing on a new carrier both succeed."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from authority_support import fetch

from fmcsa_source_authority.store import Store


async def test_two_stores_racing_on_the_same_new_carrier_both_succeed(database_url: str) -> None:
    """Nothing to lock yet: on PostgreSQL the loser of the insert race hits a unique key, and the
    upsert is tried again (stamina) and finds the winner's rows: one inserts, the other changes nothing.
    """
    one, two = await Store.connect(database_url), await Store.connect(database_url)
    try:
        first = fetch()
        results = await asyncio.gather(
            one.upsert(first, request_id=uuid4()), two.upsert(first, request_id=uuid4())
        )
        assert sorted(r.inserted for r in results) == [0, 4]  # the profile, a docket, two filings
        assert sorted(r.unchanged for r in results) == [0, 4]
    finally:
        await one.close()
        await two.close()
