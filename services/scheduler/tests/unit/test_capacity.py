"""The capacity arithmetic: in-flight cap, cycle figures and message, paces read from `fmcsa_pace`
documents, the freshness share; and a queue simulation showing what the cap is for."""

from __future__ import annotations

import json
from collections import deque

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_scheduler.capacity import (
    DEFAULT_CALLS_PER_SYNC,
    MIN_COST_SHARE,
    Capacity,
    RecentOutcomes,
    cycle,
    in_flight_cap,
    paces_from,
    staleness_order,
)

CSA, VIOLATIONS, AUTHORITY = SourceKey.CSA, SourceKey.VIOLATIONS, SourceKey.AUTHORITY
SIX_HOURS_S = 6 * 3600


def test_the_issue_s_example_csa_at_two_calls_a_second_is_one_sync_a_second_and_behind() -> None:
    csa = Capacity(CSA, pace_per_s=2.0, calls_per_sync=DEFAULT_CALLS_PER_SYNC[CSA])
    assert csa.full_syncs_per_s == 1.0
    fresh = cycle(100_000, csa, interval_s=SIX_HOURS_S)
    assert fresh.behind
    assert fresh.message(CSA) == "csa: 100,000 companies need 27.8 h a cycle at 1 sync/s; interval 6 h"
    assert in_flight_cap(csa, deadline_s=30 * 60, safety=0.8) == 1440  # 24 minutes of work at most


def test_short_figures_read_in_minutes_and_a_cycle_that_fits_is_not_behind() -> None:
    csa = Capacity(CSA, pace_per_s=2.0, calls_per_sync=2.0)
    fresh = cycle(1_000, csa, interval_s=5 * 60)
    assert fresh.behind
    assert fresh.message(CSA) == "csa: 1,000 companies need 16.7 min a cycle at 1 sync/s; interval 5 min"
    fits = cycle(200, csa, interval_s=5 * 60)
    assert not fits.behind
    assert fits.message(CSA) == "csa: 200 companies need 3.33 min a cycle at 1 sync/s; interval 5 min"


def test_the_cap_converts_the_scheduler_s_fast_clock_to_real_seconds_and_is_at_least_one() -> None:
    csa = Capacity(CSA, pace_per_s=2.0, calls_per_sync=2.0)
    assert in_flight_cap(csa, deadline_s=30 * 60, safety=0.8, time_scale=60) == 24
    slow = Capacity(AUTHORITY, pace_per_s=0.05, calls_per_sync=5.0)
    assert in_flight_cap(slow, deadline_s=60, safety=0.5) == 1
    # a test clock 300 times faster makes the same 100,000 companies need 300 times the scheduler's hours
    assert cycle(100_000, csa, interval_s=SIX_HOURS_S, time_scale=300).hours_needed == pytest.approx(
        100_000 * 300 / 3600
    )


def test_freshness_checks_raise_the_expected_rate_but_never_the_cap() -> None:
    full = Capacity(VIOLATIONS, pace_per_s=2.0, calls_per_sync=1.0)
    mostly_unchanged = Capacity(VIOLATIONS, pace_per_s=2.0, calls_per_sync=1.0, unchanged_share=0.9)
    assert mostly_unchanged.syncs_per_s == pytest.approx(20.0)
    assert mostly_unchanged.full_syncs_per_s == full.full_syncs_per_s == 2.0
    assert in_flight_cap(mostly_unchanged, deadline_s=1800, safety=0.8) == in_flight_cap(
        full, deadline_s=1800, safety=0.8
    )
    all_unchanged = Capacity(VIOLATIONS, pace_per_s=2.0, calls_per_sync=1.0, unchanged_share=1.0)
    assert all_unchanged.syncs_per_s == pytest.approx(2.0 / MIN_COST_SHARE)  # never free
    assert cycle(100_000, mostly_unchanged, interval_s=SIX_HOURS_S).hours_needed == pytest.approx(
        100_000 / 20 / 3600
    )


def test_recent_outcomes_estimate_the_unchanged_share_over_a_sliding_window() -> None:
    recent = RecentOutcomes(window=4)
    assert recent.share(VIOLATIONS) == 0.0
    for unchanged in (True, True, False, True):
        recent.add(VIOLATIONS, checked_unchanged=unchanged)
    assert recent.share(VIOLATIONS) == 0.75
    recent.add(VIOLATIONS, checked_unchanged=False)  # the first True leaves the window
    recent.add(VIOLATIONS, checked_unchanged=False)  # the second too
    assert recent.share(VIOLATIONS) == 0.25
    assert recent.share(CSA) == 0.0  # per source


def _doc(rate: float) -> bytes:
    return json.dumps({"rate": rate, "ceiling": 2.0, "throttled": 0}).encode()


def test_the_pace_of_a_source_is_its_slowest_live_host_else_its_slowest_known() -> None:
    documents = {
        "csa.mobile_fmcsa_dot_gov_qc_services": _doc(1.5),
        "csa.127_0_0_1_8900": _doc(0.5),  # an old sandbox: no live replica
        "authority.mobile_fmcsa_dot_gov_qc_services": _doc(2.0),
        "authority.datahub-data_transportation_gov": _doc(1.0),
        "violations.data_transportation_gov": _doc(0.8),
        "nosuchsource.example": _doc(9.0),
        "inspections.saferwebapi_com": b"{not json",
    }
    live = {
        "csa.mobile_fmcsa_dot_gov_qc_services",
        "authority.mobile_fmcsa_dot_gov_qc_services",
        "authority.datahub-data_transportation_gov",
    }
    assert paces_from(documents, live) == {CSA: 1.5, AUTHORITY: 1.0, VIOLATIONS: 0.8}


def test_the_stalest_comes_first_and_never_synced_before_all() -> None:
    waiting = [(1_700_000_000_000, 3), (0, 7), (1_600_000_000_000, 9), (0, 2), (1_600_000_000_000, 1)]
    ordered = sorted(waiting, key=lambda pair: staleness_order(*pair))
    assert [index for _, index in ordered] == [2, 7, 1, 9, 3]


def _worst_wait(*, cap: int | None, seconds: int, due_per_s: float, serve_per_s: float) -> float:
    """A source served one request after another at `serve_per_s`, fed each second with what came due
    (`due_per_s`), never more than `cap` open: the longest any request waited from its publish."""
    queue: deque[float] = deque()
    due = 0.0
    credit = 0.0
    worst = 0.0
    for second in range(seconds):
        due += due_per_s
        room = len(queue) if cap is None else cap - len(queue)
        publish = int(due) if cap is None else min(int(due), max(0, room))
        for _ in range(publish):
            queue.append(float(second))
        due -= publish
        credit += serve_per_s
        while credit >= 1 and queue:
            worst = max(worst, second - queue.popleft())
            credit -= 1
    return worst


def test_what_the_cap_is_for_published_requests_never_wait_past_the_deadline() -> None:
    # the issue's figures: 280 csa requests come due a minute, csa serves 60 (1 sync/s)
    csa = Capacity(CSA, pace_per_s=2.0, calls_per_sync=2.0)
    deadline_s = 30 * 60
    cap = in_flight_cap(csa, deadline_s=deadline_s, safety=0.8)
    kwargs = {"seconds": 2 * 3600, "due_per_s": 280 / 60, "serve_per_s": csa.full_syncs_per_s}
    assert _worst_wait(cap=None, **kwargs) > deadline_s  # unbounded: most requests end `timeout`
    assert _worst_wait(cap=cap, **kwargs) <= 0.8 * deadline_s
