"""The in-flight marker protocol (`fmcsa_events.inflight`) on a real JetStream KV bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import uuid4

import nats
import pytest
from nats.js.kv import KeyValue

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.inflight import Held, InflightMarker, Taken, inflight_key, release, take
from fmcsa_events.models import Counts, SourceSynced, Trigger
from fmcsa_events.topology import INFLIGHT_BUCKET, STATE_BUCKET, Topology, declare
from fmcsa_scheduler.handlers import Scheduler
from fmcsa_scheduler.settings import Settings
from fmcsa_scheduler.state import StateStore

NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
CSA = SourceKey.CSA


@pytest.fixture
async def kv(fresh_nats_url: str) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(fresh_nats_url)
    js = nc.jetstream()
    await declare(js, Topology())
    yield await js.key_value(INFLIGHT_BUCKET)
    await nc.drain()


def marker(*, deadline_in: timedelta = timedelta(minutes=30)) -> InflightMarker:
    return InflightMarker(
        request_id=uuid4(),
        trigger=Trigger.MANUAL,
        requested_by="ops@example.com",
        taken_at=NOW,
        deadline=NOW + deadline_in,
    )


async def test_only_one_request_holds_a_pair_until_it_releases(kv: KeyValue) -> None:
    first, second = marker(), marker()
    assert isinstance(await take(kv, first, source="csa", dot="42", now=NOW), Taken)
    held = await take(kv, second, source="csa", dot="42", now=NOW)
    assert isinstance(held, Held)
    assert held.marker == first
    assert isinstance(await take(kv, second, source="violations", dot="42", now=NOW), Taken)  # other source
    assert not await release(kv, source="csa", dot="42", request_id=second.request_id)  # not its marker
    assert await release(kv, source="csa", dot="42", request_id=first.request_id)
    assert not await release(kv, source="csa", dot="42", request_id=first.request_id)  # already gone
    assert isinstance(await take(kv, second, source="csa", dot="42", now=NOW), Taken)


async def test_a_marker_past_its_deadline_is_taken_over(kv: KeyValue) -> None:
    stale = marker(deadline_in=timedelta(minutes=1))
    await take(kv, stale, source="csa", dot="42", now=NOW)
    later = NOW + timedelta(minutes=2)
    taken = await take(kv, marker(), source="csa", dot="42", now=later)
    assert isinstance(taken, Taken)
    assert taken.replaced == stale


async def test_an_unreadable_marker_is_taken_over(kv: KeyValue) -> None:
    await kv.put(inflight_key("csa", "42"), b"garbage")
    taken = await take(kv, marker(), source="csa", dot="42", now=NOW)
    assert isinstance(taken, Taken)
    assert taken.replaced is None


async def test_a_release_never_removes_a_marker_taken_in_between(kv: KeyValue) -> None:
    first = marker()
    await take(kv, first, source="csa", dot="42", now=NOW)
    # the first request's deadline passes and a new request takes the pair over
    late = NOW + timedelta(hours=1)
    second = marker(deadline_in=timedelta(hours=2))
    assert isinstance(await take(kv, second, source="csa", dot="42", now=late), Taken)
    # the first request's late outcome arrives: its release must leave the second marker alone
    assert not await release(kv, source="csa", dot="42", request_id=first.request_id)
    entry = await kv.get(inflight_key("csa", "42"))
    assert InflightMarker.decode(entry.value) == second


class FlakyBucket:
    """A real KV bucket whose first `failures` deletes time out, as during a JetStream leader election."""

    def __init__(self, kv: KeyValue, failures: int) -> None:
        self._kv, self.failures, self.deletes = kv, failures, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def delete(self, key: str, last: int | None = None) -> bool:
        self.deletes += 1
        if self.failures > 0:
            self.failures -= 1
            raise nats.errors.TimeoutError
        return await self._kv.delete(key, last=last)


async def test_the_scheduler_releases_a_marker_after_a_bus_error_instead_of_waiting_for_its_deadline(
    kv: KeyValue,
) -> None:
    held = marker()
    assert isinstance(await take(kv, held, source=CSA, dot="42", now=NOW), Taken)
    scheduler = Scheduler(Settings(), clock=lambda: NOW)
    flaky = FlakyBucket(kv, failures=2)
    scheduler._inflight = cast(KeyValue, flaky)
    scheduler._state = StateStore(await kv._js.key_value(STATE_BUCKET))
    answered = SourceSynced(
        request_id=held.request_id,
        dot="42",
        source=CSA,
        counts=Counts(fetched=1),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )

    await scheduler._apply_activity(answered, seq=7)

    assert flaky.deletes == 3  # two timeouts, then the delete that released it
    assert scheduler.stats.activity_retries == 2
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get(inflight_key(CSA, "42"))
