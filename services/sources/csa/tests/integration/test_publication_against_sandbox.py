"""csa's freshness check against the sandbox: a carrier fetched since the SMS dataset's newest publication
ends `checked_unchanged` with one metadata call and no QCMobile call; a `sandbox bump` publishes, and the
next sync fetches again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr

from fmcsa_events.models import Counts, SyncRequested, Trigger
from fmcsa_source_csa.app import build_adapter
from fmcsa_source_csa.domain.model import CsaFetch
from fmcsa_source_csa.settings import Settings
from fmcsa_source_csa.store import Store
from fmcsa_source_csa.upstream import QCMobileClient
from fmcsa_source_kit.runner import Unchanged
from fmcsa_source_kit.settle import Stored

HEALTHY = "1000001"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.connect(database_url)
    yield opened
    await opened.close()


def request_for(dot: str) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source="csa",
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )


async def paths_asked(admin: httpx.AsyncClient) -> Counter[str]:
    seen = (await admin.get("/_sandbox/stats")).json()["requests_seen"]
    return Counter(entry.split("?", 1)[0] for entry in seen)


async def test_a_carrier_fetched_since_the_newest_sms_publication_is_checked_and_a_bump_fetches(
    sandbox_url: str, store: Store
) -> None:
    settings = Settings.model_validate(
        {
            "base_url": f"{sandbox_url}/qc/services",
            "web_key": SecretStr("sandbox-webkey"),
            "rate_per_s": 50.0,
            "publication_url": sandbox_url,
            "publication_check_s": 0.001,  # asked at every sync, so that a bump is seen at once
        }
    )
    adapter = build_adapter(settings, QCMobileClient.from_settings(settings), store)
    async with httpx.AsyncClient(base_url=sandbox_url) as admin:
        try:
            first = await adapter.fetch(HEALTHY)
            assert isinstance(first, CsaFetch)  # never fetched by this process: fetched
            stored = await adapter.store(first, request_for(HEALTHY))
            assert isinstance(stored, Stored)
            assert not stored.checked_unchanged

            before = await paths_asked(admin)
            again = await adapter.fetch(HEALTHY)
            assert isinstance(again, Unchanged)
            checked = await adapter.store(again, request_for(HEALTHY))
            assert isinstance(checked, Stored)
            assert checked.checked_unchanged
            assert checked.counts == Counts()
            assert checked.summary == stored.summary
            assert checked.retrieved_at == first.retrieved_at
            assert checked.upstream_as_of == first.upstream_as_of
            assert await paths_asked(admin) - before == Counter({"/api/views/8mt8-2mdr.json": 1})

            (await admin.post("/_sandbox/bump")).raise_for_status()
            before = await paths_asked(admin)
            moved = await adapter.fetch(HEALTHY)
            assert isinstance(moved, CsaFetch)  # a new SMS run was published: both calls again
            assert isinstance(await adapter.store(moved, request_for(HEALTHY)), Stored)
            asked = await paths_asked(admin) - before
            assert asked[f"/qc/services/carriers/{HEALTHY}"] == 1
            assert asked[f"/qc/services/carriers/{HEALTHY}/basics"] == 1
            assert isinstance(await adapter.fetch(HEALTHY), Unchanged)
        finally:
            await adapter.close()


async def test_another_replica_on_the_same_database_skips_a_carrier_one_of_them_fetched(
    sandbox_url: str, database_url: str, store: Store
) -> None:
    """The publication seen before a fetch is in the store's database (`fetch_marks`), not in a process:
    a second replica (its own engine, client and adapter), like a restarted one, skips the carrier."""
    settings = Settings.model_validate(
        {
            "base_url": f"{sandbox_url}/qc/services",
            "web_key": SecretStr("sandbox-webkey"),
            "rate_per_s": 50.0,
            "publication_url": sandbox_url,
            "publication_check_s": 0.001,
        }
    )
    first = build_adapter(settings, QCMobileClient.from_settings(settings), store)
    other_store = await Store.connect(database_url)
    other = build_adapter(settings, QCMobileClient.from_settings(settings), other_store)
    async with httpx.AsyncClient(base_url=sandbox_url) as admin:
        try:
            fetched = await first.fetch(HEALTHY)
            assert isinstance(fetched, CsaFetch)
            assert isinstance(await first.store(fetched, request_for(HEALTHY)), Stored)

            before = await paths_asked(admin)
            skipped = await other.fetch(HEALTHY)
            assert isinstance(skipped, Unchanged)
            assert skipped.held.retrieved_at == fetched.retrieved_at
            assert await paths_asked(admin) - before == Counter({"/api/views/8mt8-2mdr.json": 1})

            (await admin.post("/_sandbox/bump")).raise_for_status()
            moved = await other.fetch(HEALTHY)  # a new publication: the replica fetches and remembers it
            assert isinstance(moved, CsaFetch)
            assert isinstance(await other.store(moved, request_for(HEALTHY)), Stored)
            assert isinstance(await first.fetch(HEALTHY), Unchanged)
        finally:
            await first.close()
            await other.close()
