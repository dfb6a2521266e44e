"""The client's leaky bucket keeps headroom under the upstream's, so jitter never turns into a 429."""

from __future__ import annotations

import random

import pytest

from fmcsa_source_violations.domain import JITTER_TOLERANCE_S, client_bucket


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
        """When a request asked at `now` is admitted (a client waits rather than being refused)."""
        self._drain_to(now)
        wait = max(0.0, (self.level + 1 - self.capacity) / self.drain)
        self._drain_to(now + wait)
        self.level += 1
        return now + wait


@pytest.mark.parametrize("rate", [1.0, 1.5, 2.0, 3.0, 10.0, 20.0, 100.0])
def test_jittered_arrivals_at_the_client_rate_are_never_refused(rate: float) -> None:
    capacity, period = client_bucket(rate)
    client = LeakyBucket(capacity, capacity / period)
    server = LeakyBucket(rate, rate)
    rng = random.Random(7)
    sent = sorted(client.earliest(0.0) + rng.uniform(0, JITTER_TOLERANCE_S) for _ in range(int(rate * 30)))
    refused = sum(1 for arrival in sent if not server.admit(arrival))
    assert refused == 0


@pytest.mark.parametrize("rate", [2.0, 10.0, 50.0])
def test_from_2_per_second_the_steady_rate_is_the_full_rate(rate: float) -> None:
    capacity, period = client_bucket(rate)
    assert capacity / period == pytest.approx(rate)
    assert 1 <= capacity < rate


def test_at_1_per_second_the_client_gives_up_5_percent_at_most() -> None:
    capacity, period = client_bucket(1.0)
    assert capacity == 1.0
    assert 0.95 <= capacity / period < 1.0


def test_an_identical_bucket_would_be_refused_under_jitter() -> None:
    client, server = LeakyBucket(10, 10), LeakyBucket(10, 10)
    rng = random.Random(7)
    sent = sorted(client.earliest(0.0) + rng.uniform(0, JITTER_TOLERANCE_S) for _ in range(300))
    assert sum(1 for arrival in sent if not server.admit(arrival)) > 0
