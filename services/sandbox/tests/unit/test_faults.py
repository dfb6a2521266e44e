from __future__ import annotations

import json
import random

import pytest

from fmcsa_sandbox.faults import (
    Counters,
    Fault,
    FaultDice,
    LeakyBucket,
    Odds,
    RefusedTwicePerCarrierSync,
    RefusedTwicePerSync,
    retry_after_header,
    truncate,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_one_seconds_worth_at_once_then_refuses() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(5, clock=clock)
    assert [bucket.admit() for _ in range(5)] == [None] * 5
    wait = bucket.admit()
    assert wait == pytest.approx(0.2)


def test_a_bucket_drains_at_its_rate() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(10, clock=clock)
    for _ in range(10):
        assert bucket.admit() is None
    clock.now += 0.1  # one slot drained
    assert bucket.admit() is None
    assert bucket.admit() is not None
    clock.now += 1.0
    assert [bucket.admit() for _ in range(10)] == [None] * 10


def test_a_client_pacing_at_exactly_the_rate_is_never_refused() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(20, clock=clock)
    for _ in range(20):
        assert bucket.admit() is None  # the initial burst of a full bucket
    for k in range(1, 2001):
        clock.now = 1000.0 + k / 20  # exact positions: `+=` would drift ahead of the rate by rounding
        assert bucket.admit() is None


def test_refused_requests_do_not_fill_the_bucket() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(2, clock=clock)
    bucket.admit(), bucket.admit()
    for _ in range(50):
        assert bucket.admit() is not None
    clock.now += 0.5
    assert bucket.admit() is None


def test_rate_zero_admits_everything_and_a_rate_change_keeps_the_level() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(0, clock=clock)
    assert all(bucket.admit() is None for _ in range(10_000))
    bucket.set_rate(3)
    assert [bucket.admit() for _ in range(4)][:3] == [None] * 3
    bucket.set_rate(1)  # level 3 now exceeds the new capacity of 1: refuse until it drains
    assert bucket.admit() == pytest.approx(3.0)
    clock.now += 3.0
    assert bucket.admit() is None


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (2.5, "3")])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


def test_dice_with_zero_odds_draw_nothing() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    dice = FaultDice(rng)
    assert all(dice.roll(Odds()) is None for _ in range(100))
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("odds", "fault"),
    [
        (Odds(hang=1.0), Fault.HANG),
        (Odds(server_error=1.0), Fault.SERVER_ERROR),
        (Odds(too_many=1.0), Fault.TOO_MANY),
        (Odds(malformed=1.0), Fault.MALFORMED),
        (Odds(accepted=1.0), Fault.ACCEPTED),
    ],
)
def test_certain_odds_always_give_that_fault(odds: Odds, fault: Fault) -> None:
    dice = FaultDice(random.Random(2))
    assert {dice.roll(odds) for _ in range(200)} == {fault}


def test_dice_frequencies_follow_the_odds() -> None:
    dice = FaultDice(random.Random(3))
    odds = Odds(hang=0.05, server_error=0.1, too_many=0.2, malformed=0.05)
    draws = [dice.roll(odds) for _ in range(20_000)]
    for fault, p in (
        (Fault.HANG, 0.05),
        (Fault.SERVER_ERROR, 0.1),
        (Fault.TOO_MANY, 0.2),
        (Fault.MALFORMED, 0.05),
    ):
        assert draws.count(fault) / len(draws) == pytest.approx(p, abs=0.01)
    assert draws.count(None) / len(draws) == pytest.approx(0.6, abs=0.015)


def test_server_errors_come_as_json_html_or_nothing() -> None:
    dice = FaultDice(random.Random(4))
    seen = {dice.server_error() for _ in range(200)}
    assert {e.status for e in seen} <= {500, 502, 503}
    assert {e.media_type for e in seen} == {"application/json", "text/html", "text/plain"}
    assert any(e.body == b"{}" for e in seen)
    assert any(e.body == b"" for e in seen)


def test_a_truncated_body_is_never_valid_json() -> None:
    for body in (b'{"content":null}', b"[]\n", b"{}", b'[{"a":"b"}\n,{"a":"c"}]\n', b"x"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(truncate(body))


def test_the_magic_sync_is_refused_twice_then_served_until_its_last_page() -> None:
    sync = RefusedTwicePerSync()
    assert [sync.refuse(0), sync.refuse(0), sync.refuse(0)] == [True, True, False]
    sync.served(last_page=False)
    assert sync.refuse(1000) is False  # the second page of the same sync
    sync.served(last_page=True)
    assert [sync.refuse(0), sync.refuse(0), sync.refuse(0)] == [True, True, False]


def test_the_authority_rule_refuses_two_calls_from_each_carrier_record_that_starts_a_sync() -> None:
    sync = RefusedTwicePerCarrierSync()
    assert [sync.refuse(carrier_record=True), sync.refuse(carrier_record=False)] == [True, True]
    assert [sync.refuse(carrier_record=flag) for flag in (True, False, False)] == [False, False, False]
    # the next carrier record starts the next sync; calls before it belong to the last one
    assert [sync.refuse(carrier_record=flag) for flag in (True, True, True, False)] == [
        True,
        True,
        False,
        False,
    ]


def test_the_authority_rule_refuses_whatever_comes_first() -> None:
    sync = RefusedTwicePerCarrierSync()
    assert [sync.refuse(carrier_record=False) for _ in range(3)] == [True, True, False]


def test_an_offset_request_outside_a_sync_is_served() -> None:
    sync = RefusedTwicePerSync()
    assert sync.refuse(1000) is False


def test_counters_tally_admitted_requests_per_wall_clock_second() -> None:
    counters = Counters()
    for now in (100.1, 100.5, 100.9, 101.0, 103.2, 103.3):
        counters.admit(now)
    assert counters.admitted == 6
    assert counters.seconds() == {"100": 3, "101": 1, "103": 2}
    assert counters.max_per_s == 3
    counters.reset()
    assert counters.seconds() == {}
    assert counters.max_per_s == 0
    assert counters.admitted == 0


def test_counters_keep_a_bounded_history() -> None:
    counters = Counters(keep_s=10)
    for second in range(100):
        counters.admit(float(second))
    tally = counters.seconds()
    assert len(tally) <= 11
    assert "99" in tally
    assert "0" not in tally
