"""The pure pieces of `fmcsa_source_kit.publication`: the unchanged-since-fetch decision and the parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fmcsa_source_kit.publication import rows_updated_at, unchanged_since_fetch, within_publication_period

T = datetime(2026, 11, 13, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("published", "seen_at_fetch", "unchanged"),
    [
        (T, T, True),  # nothing published since the fetch
        (T - timedelta(days=30), T, True),
        (T + timedelta(seconds=1), T, False),  # a new publication: fetch
        (None, T, False),  # the check failed: cannot tell, fetch
        (T, None, False),  # never fetched (by this process): fetch
        (None, None, False),
    ],
)
def test_a_carrier_is_unchanged_only_when_nothing_was_published_since_its_fetch(
    published: datetime | None, seen_at_fetch: datetime | None, unchanged: bool
) -> None:
    assert unchanged_since_fetch(published, seen_at_fetch) is unchanged


DAY = timedelta(days=1)
MIDNIGHT = datetime(2026, 11, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fetched_at", "now", "period", "fresh"),
    [
        (MIDNIGHT + timedelta(hours=1), MIDNIGHT + timedelta(hours=23), DAY, True),  # same UTC day
        (MIDNIGHT, MIDNIGHT + DAY - timedelta(microseconds=1), DAY, True),  # the period's both ends
        (MIDNIGHT - timedelta(seconds=1), MIDNIGHT + timedelta(seconds=1), DAY, False),  # a new day
        (MIDNIGHT + timedelta(hours=1), MIDNIGHT + DAY + timedelta(hours=1), DAY, False),
        (MIDNIGHT + timedelta(hours=5), MIDNIGHT + timedelta(hours=7), timedelta(hours=6), False),
        (MIDNIGHT + timedelta(hours=7), MIDNIGHT + timedelta(hours=11), timedelta(hours=6), True),
        (None, MIDNIGHT, DAY, False),  # never fetched
        (MIDNIGHT, MIDNIGHT, timedelta(0), False),  # the cadence is off
    ],
)
def test_a_carrier_is_fresh_only_when_fetched_within_the_current_publication_period(
    fetched_at: datetime | None, now: datetime, period: timedelta, fresh: bool
) -> None:
    assert within_publication_period(fetched_at, now, period) is fresh


def test_rows_updated_at_reads_epoch_seconds_and_refuses_anything_else() -> None:
    assert rows_updated_at(200, b'{"rowsUpdatedAt": 1794580200}') == datetime.fromtimestamp(1794580200, UTC)
    for status, body in [
        (500, b'{"rowsUpdatedAt": 1794580200}'),
        (200, b"<html>"),
        (200, b"[]"),
        (200, b'{"rowsUpdatedAt": "1794580200"}'),
        (200, b'{"rowsUpdatedAt": true}'),
        (200, b'{"rowsUpdatedAt": 0}'),
    ]:
        assert rows_updated_at(status, body) is None
