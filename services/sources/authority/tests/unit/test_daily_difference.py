"""The daily difference gate's pure rule: which carriers need a QCMobile fetch, and the watch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fmcsa_source_authority.domain.difference import (
    FetchReason,
    Watch,
    difference_dot,
    fetch_reason,
    watch_since,
)

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
GAP = timedelta(hours=12)
WATCH = Watch(since=NOW - 3 * DAY, checked_at=NOW - timedelta(minutes=5), position=NOW - DAY)


def reason(
    fetched_at: datetime | None = NOW - DAY,
    position: datetime | None = NOW - 2 * DAY,
    watch: Watch | None = WATCH,
    *,
    listed: bool = False,
) -> FetchReason | None:
    return fetch_reason(fetched_at, position, NOW, watch, listed=listed, full_refresh=WEEK, max_gap=GAP)


def test_a_watched_carrier_no_publication_lists_is_not_fetched() -> None:
    assert reason() is None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"fetched_at": None, "position": None}, FetchReason.NEVER_FETCHED),
        ({"fetched_at": NOW - WEEK}, FetchReason.FULL_REFRESH),
        ({"watch": None}, FetchReason.GATE_BLIND),  # the last check failed
        (
            {"watch": Watch(NOW - 3 * DAY, NOW - GAP - timedelta(seconds=1), NOW - DAY)},
            FetchReason.GATE_BLIND,
        ),
        ({"fetched_at": NOW - 4 * DAY}, FetchReason.NOT_WATCHED),  # before the watch began
        ({"position": None}, FetchReason.NOT_WATCHED),  # fetched while the gate had read nothing
        ({"listed": True}, FetchReason.LISTED),
    ],
)
def test_each_reason_to_fetch(case: dict[str, object], expected: FetchReason) -> None:
    assert reason(**case) is expected  # type: ignore[arg-type]


def test_the_full_refresh_comes_first_even_when_the_gate_is_blind() -> None:
    assert reason(fetched_at=NOW - 2 * WEEK, watch=None) is FetchReason.FULL_REFRESH


def test_a_watch_goes_on_across_short_gaps_and_begins_again_after_a_long_one() -> None:
    began = NOW - 3 * DAY
    assert watch_since(NOW - timedelta(minutes=5), began, NOW, GAP) == began
    assert watch_since(NOW - GAP, began, NOW, GAP) == began
    assert watch_since(NOW - GAP - timedelta(seconds=1), began, NOW, GAP) == NOW
    assert watch_since(None, None, NOW, GAP) == NOW  # the first check


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2847193", "2847193"), ("02847193", "2847193"), (" 12 ", "12"), ("0", None), ("123456789", None),
     ("12a", None), ("", None), (2847193, None), (None, None), ("٣", None)],
)  # fmt: skip
def test_a_listed_dot_is_keyed_without_leading_zeros(value: object, expected: str | None) -> None:
    assert difference_dot(value) == expected
