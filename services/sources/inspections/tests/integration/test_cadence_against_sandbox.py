"""inspections' freshness against the sandbox, on SQLite and PostgreSQL. The change gate (the default):
after a first sync, a bump of one carrier makes exactly that carrier call SaferWebAPI while the others end
`checked_unchanged` without a call (the gate's checks run when the test advances its monotonic clock).
The publication cadence (the gate off): a carrier fetched successfully within the current day ends
`checked_unchanged` without a call, on any replica of the source's database; the next day it is fetched.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
from pydantic import SecretStr

from fmcsa_events.models import Counts, SyncRequested, Trigger
from fmcsa_source_inspections.app import build_adapter
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_inspections.settings import Settings
from fmcsa_source_inspections.store import Store
from fmcsa_source_inspections.upstream import SaferWebClient, datahub_client
from fmcsa_source_kit.runner import Unchanged
from fmcsa_source_kit.settle import Stored

HEALTHY = "2847193"
DOTS = (HEALTHY, "1000001", "1000002")
CHANGED = "1000001"


def request_for(dot: str) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source="inspections",
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )


async def snapshot_calls(admin: httpx.AsyncClient) -> int:
    seen = (await admin.get("/_sandbox/stats")).json()["requests_seen"]
    return Counter(entry.split("?", 1)[0] for entry in seen)[f"/v2/usdot/snapshot/{HEALTHY}"]


async def test_a_carrier_fetched_today_is_checked_unchanged_by_any_replica_and_fetched_the_next_day(
    sandbox_url: str, database_url: str
) -> None:
    settings = Settings.model_validate(
        {
            "base_url": sandbox_url,
            "api_key": SecretStr("sandbox-api-key"),
            "rate_per_s": 50.0,
            "change_gate": False,  # the publication period: the fallback while the gate is off
        }
    )
    assert settings.publication_period_s == 86400  # the default: daily
    now = [datetime.now(UTC)]
    first_store, other_store = await Store.connect(database_url), await Store.connect(database_url)
    first = build_adapter(settings, SaferWebClient.from_settings(settings), first_store, clock=lambda: now[0])
    other = build_adapter(settings, SaferWebClient.from_settings(settings), other_store, clock=lambda: now[0])
    async with httpx.AsyncClient(base_url=sandbox_url) as admin:
        try:
            fetched = await first.fetch(HEALTHY)
            assert isinstance(fetched, InspectionsFetch)
            stored = await first.store(fetched, request_for(HEALTHY))
            assert isinstance(stored, Stored)
            now[0] = fetched.retrieved_at.replace(hour=23)  # later the same UTC day

            before = await snapshot_calls(admin)
            skipped = await other.fetch(HEALTHY)  # another replica: the fetch mark is in the database
            assert isinstance(skipped, Unchanged)
            checked = await other.store(skipped, request_for(HEALTHY))
            assert isinstance(checked, Stored)
            assert checked.checked_unchanged
            assert checked.counts == Counts()
            assert checked.retrieved_at == fetched.retrieved_at
            assert checked.upstream_as_of == fetched.upstream_as_of
            assert checked.summary == stored.summary
            assert await snapshot_calls(admin) == before

            now[0] += timedelta(hours=2)  # a new publication day
            again = await other.fetch(HEALTHY)
            assert isinstance(again, InspectionsFetch)
            assert await snapshot_calls(admin) == before + 1
        finally:
            await first.close()
            await other.close()


async def test_a_bump_of_one_carrier_makes_exactly_that_one_call_saferwebapi(
    sandbox_url: str, database_url: str
) -> None:
    settings = Settings.model_validate(
        {
            "base_url": sandbox_url,
            "datahub_base_url": sandbox_url,
            "api_key": SecretStr("sandbox-api-key"),
            "rate_per_s": 50.0,
            "change_gate_check_s": 3600.0,  # checks only when the test moves `mono`
        }
    )
    assert settings.change_gate  # on by default
    now, mono = [datetime.now(UTC)], [0.0]
    adapter = build_adapter(
        settings,
        SaferWebClient.from_settings(settings, clock=lambda: now[0]),
        await Store.connect(database_url),
        datahub=datahub_client(settings),
        clock=lambda: now[0],
        monotonic=lambda: mono[0],
    )

    async def sync_all(admin: httpx.AsyncClient) -> tuple[set[str], Counter[str]]:
        """Sync every DOT once: the ones fetched (the others `checked_unchanged`), SaferWebAPI calls."""
        now[0] += timedelta(minutes=5)
        mono[0] += 3600.0
        (await admin.post("/_sandbox/reset")).raise_for_status()
        answers = {dot: await adapter.fetch(dot) for dot in DOTS}
        for dot, got in answers.items():
            stored = await adapter.store(got, request_for(dot))  # type: ignore[arg-type]
            assert isinstance(stored, Stored), got
            assert stored.checked_unchanged is isinstance(got, Unchanged)
            assert stored.counts == Counts() or not stored.checked_unchanged
        fetched = {dot for dot, got in answers.items() if isinstance(got, InspectionsFetch)}
        seen = (await admin.get("/_sandbox/stats")).json()["requests_seen"]
        snapshots = [s.split("?", 1)[0] for s in seen if s.startswith("/v2/usdot/snapshot/")]
        return fetched, Counter(path.rsplit("/", 1)[1] for path in snapshots)

    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as admin:
        try:
            assert (await sync_all(admin)) == (set(DOTS), Counter(dict.fromkeys(DOTS, 1)))
            assert (await sync_all(admin)) == (set(), Counter()), "nothing changed since"

            (await admin.post("/_sandbox/bump", json={"dots": [int(CHANGED)]})).raise_for_status()
            fetched, calls = await sync_all(admin)
            assert (fetched, calls) == ({CHANGED}, Counter({CHANGED: 1})), "the others: no call"
            seen = (await admin.get("/_sandbox/stats")).json()["requests_seen"]
            assert any(s.startswith("/resource/fx4q-ay7w.json") for s in seen), "the changed rows were read"

            assert (await sync_all(admin)) == (set(), Counter()), "read once: not fetched again"
        finally:
            await adapter.close()
