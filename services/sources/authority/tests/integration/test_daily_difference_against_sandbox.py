"""The daily difference gate against the sandbox, on SQLite and PostgreSQL: after a first sync, a bump of
one carrier makes exactly that carrier fetch while the others end `checked_unchanged` without a QCMobile
call; a gap in the gate's watch (a publication may have been missed) or a failed check makes every
carrier fetch. The gate's checks run when the test advances its monotonic clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
from pydantic import SecretStr

from fmcsa_events.models import Counts, SyncRequested, Trigger
from fmcsa_runtime.database import create_engine
from fmcsa_source_authority.app import build_adapter
from fmcsa_source_authority.difference import DifferenceGate
from fmcsa_source_authority.domain import AuthorityFetch
from fmcsa_source_authority.domain.difference import Watch
from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.store import Store
from fmcsa_source_authority.upstream import AuthorityClient
from fmcsa_source_kit.runner import ClientStoreAdapter, Unchanged
from fmcsa_source_kit.settle import Stored

DOTS = ("2847193", "1000001", "1000002")
CHANGED = "1000001"


def request_for(dot: str) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source="authority",
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )


class Rig:
    """An adapter on the sandbox with a clock and a monotonic clock the test moves."""

    def __init__(self, sandbox_url: str, **overrides: object) -> None:
        self.settings = Settings.model_validate(
            {
                "base_url": f"{sandbox_url}/qc/services",
                "datahub_base_url": sandbox_url,
                "web_key": SecretStr("sandbox-webkey"),
                "app_token": SecretStr("sandbox-app-token"),
                "rate_per_s": 50.0,
                "datahub_rate_per_s": 50.0,
                "daily_difference_check_s": 3600.0,  # checks only when the test moves `mono`
                **overrides,
            }
        )
        self.now = datetime.now(UTC)
        self.mono = 0.0

    def clock(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def later(self, delta: timedelta) -> None:
        self.now += delta
        self.mono += 3600.0

    async def adapter(self, database_url: str) -> ClientStoreAdapter[AuthorityFetch]:
        client = AuthorityClient.from_settings(self.settings, clock=self.clock)
        store = await Store.connect(database_url)
        return build_adapter(self.settings, client, store, clock=self.clock, monotonic=self.monotonic)


async def qcmobile_calls(admin: httpx.AsyncClient) -> Counter[str]:
    """QCMobile calls per DOT since the last reset (the sandbox's counters)."""
    seen = (await admin.get("/_sandbox/stats")).json()["requests_seen"]
    paths = [entry.split("?", 1)[0] for entry in seen if entry.startswith("/qc/services/carriers/")]
    return Counter(path.split("/")[4] for path in paths)


async def sync_all(
    adapter: ClientStoreAdapter[AuthorityFetch], admin: httpx.AsyncClient
) -> tuple[set[str], Counter[str]]:
    """Sync every DOT once: the ones fetched (each stored; the others `checked_unchanged`), QCMobile calls."""
    (await admin.post("/_sandbox/reset")).raise_for_status()
    fetched: set[str] = set()
    for dot in DOTS:
        got = await adapter.fetch(dot)
        assert isinstance(got, AuthorityFetch | Unchanged), got
        stored = await adapter.store(got, request_for(dot))
        assert isinstance(stored, Stored)  # exactly one outcome per request: SourceSynced
        if isinstance(got, Unchanged):
            assert stored.checked_unchanged
            assert stored.counts == Counts()
            assert stored.upstream_as_of == got.held.upstream_as_of
        else:
            fetched.add(dot)
    return fetched, await qcmobile_calls(admin)


async def test_a_bump_of_one_carrier_makes_exactly_that_one_fetch_and_a_missed_publication_all(
    sandbox_url: str, database_url: str
) -> None:
    rig = Rig(sandbox_url)
    assert rig.settings.daily_difference  # on by default
    adapter = await rig.adapter(database_url)
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as admin:
        try:
            fetched, calls = await sync_all(adapter, admin)
            assert fetched == set(DOTS)  # never fetched
            assert calls == dict.fromkeys(DOTS, 4)

            rig.later(timedelta(minutes=5))
            fetched, calls = await sync_all(adapter, admin)
            assert (fetched, calls) == (set(), Counter())  # nothing published since

            (await admin.post("/_sandbox/bump", json={"dots": [int(CHANGED)]})).raise_for_status()
            rig.later(timedelta(minutes=5))
            fetched, calls = await sync_all(adapter, admin)
            assert fetched == {CHANGED}
            assert calls == {CHANGED: 4}, "the others: no QCMobile call"
            seen = (await admin.get("/_sandbox/stats")).json()["requests_seen"]
            assert any(s.startswith("/resource/nakq-58th.json") for s in seen), "the publication was read"

            rig.later(timedelta(minutes=5))
            fetched, calls = await sync_all(adapter, admin)
            assert (fetched, calls) == (set(), Counter()), "read once: not fetched again"

            rig.later(timedelta(hours=13))  # longer than the watch's gap: a publication may be missed
            fetched, calls = await sync_all(adapter, admin)
            assert fetched == set(DOTS)
            rig.later(timedelta(minutes=5))
            fetched, calls = await sync_all(adapter, admin)
            assert fetched == set(), "watched again since those fetches"

            rig.now += timedelta(days=7)  # the full-refresh period: fetched whatever the gate says
            fetched, _ = await sync_all(adapter, admin)
            assert fetched == set(DOTS)
        finally:
            await adapter.close()


async def test_a_gate_that_cannot_check_lets_every_carrier_be_fetched(
    sandbox_url: str, database_url: str
) -> None:
    rig = Rig(sandbox_url, daily_difference_datasets="nakq-58th,zzzz-0000")  # the second is not on DataHub
    adapter = await rig.adapter(database_url)
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as admin:
        try:
            await sync_all(adapter, admin)
            rig.later(timedelta(minutes=5))
            fetched, calls = await sync_all(adapter, admin)
            assert fetched == set(DOTS)
            assert calls == dict.fromkeys(DOTS, 4)
        finally:
            await adapter.close()


async def test_a_decision_takes_the_last_check_while_one_is_under_way(tmp_path: Path) -> None:
    """Decisions never queue behind a check (a check can wait on DataHub's pace for seconds)."""
    rig = Rig("http://127.0.0.1:9")  # no call is made: the checks below are the test's
    client = AuthorityClient.from_settings(rig.settings)
    engine = create_engine(f"sqlite:///{tmp_path / 'gate.sqlite3'}")
    gate = DifferenceGate(
        client.datahub,
        engine,
        datasets=["nakq-58th"],
        check_s=10.0,
        max_gap=timedelta(hours=12),
        full_refresh=timedelta(days=7),
        retry_after_max_s=1.0,
        clock=rig.clock,
        monotonic=rig.monotonic,
    )
    old, new = (Watch(rig.now, rig.now, rig.now), Watch(rig.now, rig.now, rig.now + timedelta(days=1)))
    results, release = iter([old, new]), asyncio.Event()

    async def check() -> Watch | None:
        if (found := next(results)) is new:
            await release.wait()
        return found

    gate._check = check  # type: ignore[method-assign]
    try:
        assert await gate.watch() is old  # the first check: waited for
        rig.mono += 10.0
        under_way = asyncio.create_task(gate.watch())
        await asyncio.sleep(0)  # one loop turn: the task starts its check and holds it under way
        assert await asyncio.wait_for(gate.watch(), 1.0) is old, "not held behind the check under way"
        release.set()
        assert await under_way is new
        assert await gate.watch() is new
    finally:
        await client.aclose()
        await engine.dispose()
