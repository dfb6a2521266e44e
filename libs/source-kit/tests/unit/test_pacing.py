"""The client's leaky bucket stays inside the upstream's, so arrival jitter never turns into a 429."""

from __future__ import annotations

import random

import pytest

from fmcsa_source_kit.pacing import BURST_S, client_bucket


class LeakyBucket:
    """The upstream's model (and the sandbox's): capacity `rate`, draining at `rate` per second."""

    def __init__(self, capacity: float, drain_per_s: float) -> None:
        self.capacity, self.drain, self.level, self.last = capacity, drain_per_s, 0.0, 0.0

    def _drain_to(self, now: float) -> None:
        self.level = max(0.0, self.level - (now - self.last) * self.drain)
        self.last = now

    def admit(self, now: float) -> bool:
        self._drain_to(now)
        if self.level + 1 <= self.capacity + 1e-9:
            self.level += 1
            return True
        return False

    def earliest(self, now: float) -> float:
        """When a call asked at `now` leaves (a client waits rather than being refused)."""
        self._drain_to(now)
        wait = max(0.0, (self.level + 1 - self.capacity) / self.drain)
        self._drain_to(now + wait)
        self.level += 1
        return now + wait


def refused(rate: float, *, calls: int, jitter_s: float, client: tuple[float, float], seed: int = 7) -> int:
    """Calls the upstream refuses when every call asks at once and each arrives 0..jitter_s late."""
    capacity, period = client
    bucket = LeakyBucket(capacity, capacity / period)
    upstream = LeakyBucket(rate, rate)
    rng = random.Random(seed)
    arrivals = sorted(bucket.earliest(0.0) + rng.uniform(0, jitter_s) for _ in range(calls))
    return sum(1 for arrival in arrivals if not upstream.admit(arrival))


@pytest.mark.parametrize("rate", [1.0, 1.2, 1.5, 2.0, 3.0, 10.0, 20.0, 40.0, 100.0])
@pytest.mark.parametrize("seed", [1, 7, 42])
def test_arrivals_late_by_up_to_the_headroom_are_never_refused(rate: float, seed: int) -> None:
    assert refused(rate, calls=int(rate * 30), jitter_s=BURST_S, client=client_bucket(rate), seed=seed) == 0


def test_the_upstreams_own_bucket_is_refused_under_the_same_jitter() -> None:
    assert refused(10.0, calls=300, jitter_s=BURST_S, client=(10.0, 1.0)) > 0
    assert refused(10.0, calls=300, jitter_s=0.05, client=(10.0, 1.0)) > 0


@pytest.mark.parametrize("rate", [2.0, 10.0, 50.0])
def test_the_burst_is_held_back_and_the_long_run_rate_is_99_percent(rate: float) -> None:
    capacity, period = client_bucket(rate)
    assert capacity == pytest.approx(rate * (1 - BURST_S))
    assert capacity / period == pytest.approx(rate * 0.99)


def test_near_one_call_per_second_the_bucket_holds_one_call_and_spaces_them() -> None:
    assert client_bucket(1.0) == (1.0, pytest.approx(1.25))  # 0.8 calls/s: a call may be 0.25 s late
    assert client_bucket(0.5) == (1.0, pytest.approx(2.25))
    capacity, period = client_bucket(1.0, burst_s=0.0)  # no burst headroom: full one-call bucket
    assert capacity == 1.0
    assert capacity / period == pytest.approx(0.99)


@pytest.mark.parametrize(("rate", "burst_s"), [(0.0, 0.25), (-1.0, 0.25), (10.0, 1.0), (10.0, -0.1)])
def test_a_rate_or_headroom_out_of_range_is_refused(rate: float, burst_s: float) -> None:
    with pytest.raises(ValueError, match=r"must be positive|share of one second"):
        client_bucket(rate, burst_s=burst_s)
