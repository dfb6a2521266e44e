"""The status GET's caches: verified tokens (auth) and the schedules in force (next due)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_gateway.auth import VerifiedTokens
from fmcsa_gateway.bus_state import ScheduleCache, default_schedule
from fmcsa_gateway.schemas import Schedule
from fmcsa_runtime.tokens import Claims, InvalidToken, Role, mint, verify

SECRET = "unit-tests-secret-0123456789-0123456789"
OTHER_SECRET = "another-secret-0123456789-0123456789-xyz"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingVerify:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, secret: str, token: str, *, now: datetime | None = None) -> Claims:
        self.calls += 1
        return verify(secret, token, now=now)


def _token(subject: str = "alice", ttl: timedelta = timedelta(hours=1), role: Role = Role.VIEWER) -> str:
    return mint(SECRET, role=role, subject=subject, ttl=ttl, now=T0)


def _cache(**kwargs: Any) -> tuple[VerifiedTokens, CountingVerify, Clock]:
    counting, clock = CountingVerify(), Clock()
    return VerifiedTokens(verifier=counting, monotonic=clock, **kwargs), counting, clock


def test_a_token_is_verified_once_then_looked_up() -> None:
    cache, counting, _ = _cache()
    token = _token()
    first = cache.verify(SECRET, token, now=T0)
    again = cache.verify(SECRET, token, now=T0 + timedelta(minutes=5))
    assert first == again == verify(SECRET, token, now=T0)
    assert (first.subject, first.role) == ("alice", Role.VIEWER)
    assert counting.calls == 1


def test_a_kept_token_stops_working_when_it_expires_as_verify_would() -> None:
    cache, counting, _ = _cache()
    token = _token(ttl=timedelta(minutes=10))
    expires = T0 + timedelta(minutes=10)
    cache.verify(SECRET, token, now=T0)
    # a second before its expiry, still good (and still from the cache)
    assert cache.verify(SECRET, token, now=expires - timedelta(seconds=1)).subject == "alice"
    assert counting.calls == 1
    with pytest.raises(InvalidToken, match="expired"):
        cache.verify(SECRET, token, now=expires)  # expired from exp on: no leeway
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, token, now=expires)  # the same moment without a cache
    assert len(cache) == 0  # dropped: the next use verifies from scratch, and is refused
    with pytest.raises(InvalidToken, match="expired"):
        cache.verify(SECRET, token, now=expires + timedelta(hours=1))
    assert counting.calls == 2


def test_a_refused_token_is_never_kept() -> None:
    cache, counting, _ = _cache()
    expired = _token(ttl=timedelta(minutes=1))
    tampered = _token()[:-3] + "abc"
    for token in (expired, tampered):
        for _ in range(2):
            with pytest.raises(InvalidToken):
                cache.verify(SECRET, token, now=T0 + timedelta(hours=2))
    assert len(cache) == 0
    assert counting.calls == 4  # every attempt verified, and refused


def test_a_token_kept_for_one_secret_is_refused_under_another() -> None:
    """Rotating FMCSA_JWT_SECRET revokes every token: the cache must not answer for the old secret."""
    cache, counting, _ = _cache()
    token = _token()
    cache.verify(SECRET, token, now=T0)
    with pytest.raises(InvalidToken):
        cache.verify(OTHER_SECRET, token, now=T0)
    assert len(cache) == 0
    assert counting.calls == 2


def test_the_cache_holds_at_most_max_size_tokens_least_recently_used_first_out() -> None:
    cache, counting, _ = _cache(max_size=2)
    a, b, c = _token("a"), _token("b"), _token("c")
    cache.verify(SECRET, a, now=T0)
    cache.verify(SECRET, b, now=T0)
    cache.verify(SECRET, a, now=T0)  # a is now the most recently used
    cache.verify(SECRET, c, now=T0)  # evicts b
    assert len(cache) == 2
    assert counting.calls == 3
    cache.verify(SECRET, a, now=T0)
    cache.verify(SECRET, c, now=T0)
    assert counting.calls == 3
    cache.verify(SECRET, b, now=T0)  # verified again
    assert counting.calls == 4
    assert len(cache) == 2


def test_a_token_is_verified_afresh_after_the_cache_lifetime() -> None:
    cache, counting, clock = _cache(ttl_s=60.0)
    token = _token()
    cache.verify(SECRET, token, now=T0)
    clock.now += 59.9
    cache.verify(SECRET, token, now=T0)
    assert counting.calls == 1
    clock.now += 0.2
    cache.verify(SECRET, token, now=T0)
    assert counting.calls == 2


def test_a_cache_needs_room_and_a_lifetime() -> None:
    with pytest.raises(ValueError, match="room for one token"):
        VerifiedTokens(max_size=0)
    with pytest.raises(ValueError, match="positive lifetime"):
        VerifiedTokens(ttl_s=0)


# --- schedules -------------------------------------------------------------------------------


class Loader:
    def __init__(self) -> None:
        self.calls = 0
        self.interval = 360
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> list[Schedule]:
        self.calls += 1
        interval = self.interval  # what the stream holds when the read starts
        if self.gate is not None:
            await self.gate.wait()
        return [
            default_schedule(s).model_copy(update={"interval_minutes": interval, "default": False})
            for s in SourceKey
        ]


async def test_schedules_are_read_once_per_lifetime() -> None:
    load, clock = Loader(), Clock()
    cache = ScheduleCache(load, ttl_s=10.0, monotonic=clock)
    first = await cache.get()
    assert set(first) == set(SourceKey)
    assert first[SourceKey.CSA].interval_minutes == 360
    clock.now += 9.9
    await cache.get()
    assert load.calls == 1
    load.interval = 60
    clock.now += 0.2
    assert (await cache.get())[SourceKey.CSA].interval_minutes == 60
    assert load.calls == 2


async def test_an_invalidation_makes_the_next_read_go_to_the_stream() -> None:
    load, clock = Loader(), Clock()
    cache = ScheduleCache(load, ttl_s=10.0, monotonic=clock)
    await cache.get()
    load.interval = 30
    cache.invalidate()
    assert (await cache.get())[SourceKey.INSPECTIONS].interval_minutes == 30
    assert load.calls == 2


async def test_concurrent_readers_share_one_read() -> None:
    load = Loader()
    load.gate = asyncio.Event()
    cache = ScheduleCache(load, ttl_s=10.0)
    readers = [asyncio.create_task(cache.get()) for _ in range(20)]
    await asyncio.sleep(0)  # one turn of the loop: every reader is now waiting on the one load
    load.gate.set()
    answers = await asyncio.gather(*readers)
    assert load.calls == 1
    assert all(a[SourceKey.CSA].interval_minutes == 360 for a in answers)


async def test_a_read_overtaken_by_an_invalidation_is_not_kept() -> None:
    load = Loader()
    load.gate = asyncio.Event()
    cache = ScheduleCache(load, ttl_s=10.0)
    early = asyncio.create_task(cache.get())
    await asyncio.sleep(0)  # the read has started and saw 360
    load.interval = 15
    cache.invalidate()  # a ScheduleChanged was published meanwhile
    load.gate.set()
    assert (await early)[SourceKey.CSA].interval_minutes == 360  # it asked before the change
    load.gate = None
    assert (await cache.get())[SourceKey.CSA].interval_minutes == 15  # nobody later sees the old one
    assert load.calls == 2
