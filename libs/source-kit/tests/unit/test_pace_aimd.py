"""The adaptive pace, pure and on a fake clock: AIMD steps, the lazily refilled bucket, and a minute of a
client configured at 20/s against an upstream limited to 10/s."""

from __future__ import annotations

import random

import pytest

from fmcsa_source_kit.pacing import (
    AimdPolicy,
    PaceState,
    TokenBucket,
    UpstreamPace,
    client_bucket,
    is_throttle,
    pace_key,
    raised,
    throttled,
)

POLICY = AimdPolicy()


class LeakyBucket:
    """The upstream's model (the sandbox's): capacity `rate`, draining at `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.capacity, self.drain, self.level, self.last = rate, rate, 0.0, 0.0

    def admit(self, now: float) -> bool:
        self.level = max(0.0, self.level - (now - self.last) * self.drain)
        self.last = now
        if self.level + 1 <= self.capacity + 1e-9:
            self.level += 1
            return True
        return False


def test_a_throttle_halves_the_pace_and_remembers_where_the_upstream_pushed_back() -> None:
    state = PaceState.initial(20.0, now=0.0)
    after = throttled(state, POLICY, now=5.0, sent_at=4.9)
    assert (after.rate, after.limit_seen, after.decreased_at, after.throttled) == (10.0, 20.0, 5.0, 1)


def test_a_throttle_of_a_call_sent_before_the_last_decrease_is_only_counted() -> None:
    state = throttled(PaceState.initial(20.0, now=0.0), POLICY, now=5.0, sent_at=4.9)
    again = throttled(state, POLICY, now=5.2, sent_at=4.95)  # left at the old pace: same congestion
    assert (again.rate, again.throttled) == (10.0, 2)
    later = throttled(again, POLICY, now=6.0, sent_at=5.5)  # sent after the decrease: a new one
    assert (later.rate, later.throttled) == (5.0, 3)


def test_the_pace_never_drops_below_its_floor() -> None:
    state = PaceState.initial(20.0, now=0.0)
    for n in range(40):
        state = throttled(state, POLICY, now=float(n + 1), sent_at=float(n + 1))
    assert state.rate == pytest.approx(POLICY.floor(20.0)) == pytest.approx(5.0)
    assert POLICY.floor(0.1) == pytest.approx(0.05)


def test_clean_answers_raise_the_pace_one_step_per_interval_up_to_the_ceiling() -> None:
    state = PaceState(rate=10.0, ceiling=20.0, changed_at=0.0)
    assert raised(state, POLICY, now=0.5) == state  # within the interval: no step
    one = raised(state, POLICY, now=1.0)
    assert (one.rate, one.changed_at) == (12.0, 1.0)  # 10% of the ceiling
    assert raised(one, POLICY, now=1.5) == one
    top = PaceState(rate=19.0, ceiling=20.0, changed_at=0.0)
    assert raised(top, POLICY, now=10.0).rate == 20.0
    assert raised(PaceState.initial(20.0, now=0.0), POLICY, now=10.0).rate == 20.0


def test_the_pace_holds_under_where_the_upstream_pushed_back_then_probes_after_a_minute() -> None:
    state = PaceState(rate=8.5, ceiling=20.0, limit_seen=10.0, changed_at=0.0, decreased_at=0.0)
    near = raised(state, POLICY, now=1.0)
    assert near.rate == pytest.approx(9.0)  # stops at 90% of 10 rather than stepping to 10.5
    assert raised(near, POLICY, now=30.0) == near  # and holds there
    probing = raised(near, POLICY, now=60.0)  # a minute after the decrease the limit is forgotten
    assert (probing.rate, probing.limit_seen) == (pytest.approx(11.0), None)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {}, True),
        (503, {"Retry-After": "5"}, True),
        (200, {"retry-after": "1"}, True),
        (200, {}, False),
        (500, {}, False),
        (404, {}, False),
    ],
)
def test_a_throttle_is_a_429_or_any_retry_after(status: int, headers: dict[str, str], expected: bool) -> None:
    assert is_throttle(status, headers) is expected


def test_the_key_names_the_source_and_the_upstream_host_and_path() -> None:
    assert (
        pace_key("csa", "https://mobile.fmcsa.dot.gov/qc/services") == "csa.mobile_fmcsa_dot_gov_qc_services"
    )
    assert pace_key("violations", "https://data.transportation.gov/") == "violations.data_transportation_gov"
    assert pace_key("violations", "http://127.0.0.1:8900") == "violations.127_0_0_1_8900"
    assert pace_key("inspections", "https://data.transportation.gov/", "datahub") == (
        "inspections.datahub-data_transportation_gov"
    )
    # one host serving two upstreams of a source (the sandbox: QCMobile under a path, and SaferWebAPI and
    # DataHub both at its root): two paces
    sandbox = "http://127.0.0.1:8900"
    assert pace_key("authority", f"{sandbox}/qc/services") != pace_key("authority", f"{sandbox}/", "datahub")
    assert pace_key("inspections", sandbox) != pace_key("inspections", sandbox, "datahub")


def test_a_stored_pace_is_capped_by_this_replicas_ceiling_and_garbage_starts_afresh() -> None:
    stored = PaceState(rate=30.0, ceiling=30.0, limit_seen=28.0, throttled=4).to_json()
    read = PaceState.from_json(stored, ceiling=20.0, now=1.0)
    assert (read.rate, read.ceiling, read.limit_seen, read.throttled) == (20.0, 20.0, 28.0, 4)
    assert PaceState.from_json(b"not json", ceiling=20.0, now=1.0) == PaceState.initial(20.0, now=1.0)
    assert PaceState.from_json(b'{"rate": -1}', ceiling=20.0, now=1.0).rate == 20.0


def test_a_blocked_loop_releases_at_most_the_bucket_not_a_token_per_second_blocked() -> None:
    bucket = TokenBucket.for_rate(20.0, now=0.0)
    capacity, _ = client_bucket(20.0)
    for _ in range(int(capacity)):
        assert bucket.wait_s(0.0) == 0.0
        bucket.take(0.0)
    assert bucket.wait_s(0.0) > 0.0
    # the loop was blocked for five seconds: the bucket refills when asked, never above its capacity
    sent = 0
    while bucket.wait_s(5.0) == 0.0:
        bucket.take(5.0)
        sent += 1
    assert sent == int(capacity) < 5 * 20


def test_reserved_tokens_are_kept_for_the_calls_that_reserved_them() -> None:
    bucket = TokenBucket(capacity=2.0, refill_per_s=1.0, now=0.0)
    assert bucket.wait_s(0.0, reserved=1) == 0.0  # a second token is free
    assert bucket.wait_s(0.0, reserved=2) == pytest.approx(1.0)  # a third needs a second of refill


def test_a_lowered_rate_drops_the_tokens_above_the_new_capacity() -> None:
    bucket = TokenBucket.for_rate(40.0, now=0.0)
    bucket.reshape(4.0, now=0.0)
    capacity, period = client_bucket(4.0)
    assert (bucket.capacity, bucket.tokens) == (capacity, capacity)
    assert bucket.refill_per_s == pytest.approx(capacity / period)


def simulate(
    *, ceiling: float, upstream_rate: float, seconds: float, p_noise: float = 0.0, step: float = 0.01
) -> dict[str, float]:
    """A client always ready to call, paced by `UpstreamPace`'s bucket and AIMD (local: no bus), against
    an upstream leaky bucket that also answers a share `p_noise` of the calls it admits with a 429 (seeded,
    not caused by the rate); answers arrive after 50 ms. Returns the 429s and the late rate."""
    noise = random.Random(7)
    upstream = LeakyBucket(upstream_rate)
    now = 0.0
    pace = UpstreamPace(
        source="sim",
        base_url="http://upstream.test",
        ceiling=ceiling,
        wall=lambda: now,
        monotonic=lambda: now,
    )
    bucket = pace._bucket  # spent as `PacedCall` spends it, at the moment of sending
    in_flight: list[tuple[float, float, bool]] = []  # (answer at, sent at, admitted)
    refused, late_calls, late_refused = 0, 0, 0
    while now < seconds:
        for answer in [f for f in in_flight if f[0] <= now]:
            in_flight.remove(answer)
            pace._answered(answer[1], 200 if answer[2] and noise.random() >= p_noise else 429, {})
        while bucket.wait_s(now) == 0.0:
            bucket.take(now)
            admitted = upstream.admit(now)
            refused += not admitted
            if now >= seconds / 2:
                late_calls += 1
                late_refused += not admitted
            in_flight.append((now + 0.05, now, admitted))
        now = round(now + step, 6)
    return {
        "refused": refused,
        "late_rate": late_calls / (seconds / 2),
        "late_refused": late_refused,
        "pace": pace.state.rate,
    }


def test_a_client_at_20_per_s_learns_an_upstream_limited_to_10_within_a_minute() -> None:
    result = simulate(ceiling=20.0, upstream_rate=10.0, seconds=60.0)
    assert result["refused"] <= 10, result  # the first second's burst, then one or two probes
    assert result["late_refused"] <= 1, result
    assert result["late_rate"] <= 10.0, result
    assert result["pace"] <= 10.0, result


def test_without_throttles_the_pace_stays_at_the_ceiling() -> None:
    result = simulate(ceiling=20.0, upstream_rate=25.0, seconds=20.0)
    assert result["refused"] == 0
    assert result["pace"] == 20.0
    assert result["late_rate"] == pytest.approx(20.0 * 0.99, rel=0.02)


def test_429s_that_come_whatever_the_rate_do_not_drive_the_pace_to_nothing() -> None:
    # 5% of the calls refused at random, as R4's sandbox does: every halving also lowers where the pace
    # stops climbing, so without a floor worth having it sank to 0.64/s of 32 (0.9 calls/s late)
    result = simulate(ceiling=32.0, upstream_rate=1000.0, seconds=60.0, p_noise=0.05)
    assert result["pace"] >= POLICY.floor(32.0) == 8.0, result
    assert result["late_rate"] >= 7.0, result
