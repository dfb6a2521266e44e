"""The inspections change gate's pure rule: one case per reason a carrier is fetched (a row that ages out
of the 24-month window lists its carrier as a changed row does), and the rows a check asks DataHub for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fmcsa_source_inspections.domain.gate import aged_out, aged_where, updated_where, window_start
from fmcsa_source_kit.gate_rule import FetchReason, Watch, fetch_reason

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
WATCH = Watch(since=NOW - 48 * HOUR, checked_at=NOW - 0.1 * HOUR, position=NOW - 0.1 * HOUR)


@pytest.mark.parametrize(
    ("fetched_at", "watch", "listed", "expected"),
    [
        (None, WATCH, False, FetchReason.NEVER_FETCHED),
        (NOW - 8 * 24 * HOUR, WATCH, False, FetchReason.FULL_REFRESH),
        (NOW - HOUR, None, False, FetchReason.GATE_BLIND),  # the last check failed
        (NOW - HOUR, Watch(NOW - 48 * HOUR, NOW - 13 * HOUR, NOW - 13 * HOUR), False, FetchReason.GATE_BLIND),
        (NOW - 49 * HOUR, WATCH, False, FetchReason.NOT_WATCHED),
        (NOW - HOUR, WATCH, True, FetchReason.LISTED),  # a changed row, or one leaving the window
        (NOW - HOUR, WATCH, False, None),
    ],
)
def test_a_carrier_is_fetched_for_one_reason_or_not_at_all(
    fetched_at: datetime | None, watch: Watch | None, listed: bool, expected: FetchReason | None
) -> None:
    reason = fetch_reason(
        fetched_at,
        NOW - 2 * HOUR,
        NOW,
        watch,
        listed=listed,
        full_refresh=timedelta(days=7),
        max_gap=timedelta(hours=12),
    )
    assert reason is expected


def test_the_days_leaving_the_window_are_asked_for_once_the_day_after_their_anniversary() -> None:
    assert window_start(NOW) == date(2024, 12, 7)
    assert window_start(datetime(2028, 2, 29, tzinfo=UTC)) == date(2026, 2, 28)
    assert aged_out(NOW - HOUR, NOW) is None  # same day: nothing left the window
    midnight = datetime(2026, 12, 8, 0, 5, tzinfo=UTC)
    days = aged_out(midnight - 10 * 60 * timedelta(seconds=1), midnight)
    assert days == (date(2024, 12, 7), date(2024, 12, 8))
    assert aged_where("insp_date", days) == "insp_date >= '20241207' AND insp_date < '20241208'"
    assert aged_out(NOW - 3 * 24 * HOUR, NOW) == (date(2024, 12, 4), date(2024, 12, 7))  # after a gap


def test_changed_rows_are_asked_for_by_socrata_s_updated_at() -> None:
    since = datetime(2026, 12, 7, 9, 30, 1, 250_000, tzinfo=UTC)
    assert updated_where(since) == ":updated_at > '2026-12-07T09:30:01.250Z'"
