"""The schedule rules the gateway and the scheduler share, and that `ScheduleChanged` enforces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ScheduleChanged
from fmcsa_events.schedules import (
    DEFAULT_INTERVAL_MINUTES,
    cron_problem,
    default_interval_minutes,
    interval_problem,
    next_fire,
    normalized_cron,
)


def test_each_source_has_its_default_interval_and_authority_runs_daily() -> None:
    assert default_interval_minutes(SourceKey.AUTHORITY) == 1440
    others = {default_interval_minutes(s) for s in SourceKey if s is not SourceKey.AUTHORITY}
    assert others == {DEFAULT_INTERVAL_MINUTES} == {360}


@pytest.mark.parametrize(("minutes", "ok"), [(4, False), (5, True), (1440, True), (1441, False)])
def test_an_interval_is_5_to_1440_minutes(minutes: int, ok: bool) -> None:
    assert (interval_problem(minutes) is None) is ok


@pytest.mark.parametrize(
    "cron", ["0 */6 * * *", "@daily", "@HOURLY", "0  9,17 * * 1-5", "*/5 * * * *", "55 23 * * *"]
)
def test_accepted_cron_expressions(cron: str) -> None:
    assert cron_problem(cron) is None


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("* * * * *", "1 minute(s) apart"),
        ("0,3 * * * *", "3 minute(s) apart"),
        ("58 23 * * *,2 0 * * *", "5 fields"),
        ("0 0 * *", "5 fields"),
        ("@reboot", "5 fields"),
        ("61 * * * *", "not valid"),
        ("0 0 31 2 *", "not valid"),  # never fires
    ],
)
def test_refused_cron_expressions_say_why(cron: str, words: str) -> None:
    problem = cron_problem(cron)
    assert problem is not None
    assert words in problem


def test_the_gap_across_midnight_counts() -> None:
    # 00:01, 00:58, 23:01, 23:58: 57 minutes or more apart within the day, 3 from 23:58 to 00:01
    problem = cron_problem("1,58 0,23 * * *")
    assert problem is not None
    assert "3 minute(s) apart" in problem


def test_next_fire_is_the_first_after_and_none_for_an_unreadable_expression() -> None:
    after = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    assert next_fire("0 9,17 * * *", after) == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    assert next_fire("not cron", after) is None
    assert normalized_cron("  0   9 * *  * ") == "0 9 * * *"


def test_a_schedule_changed_event_refuses_what_the_scheduler_would_refuse() -> None:
    ok = ScheduleChanged(source=SourceKey.CSA, cron="0 */6 * * *")
    assert ok.cron == "0 */6 * * *"
    with pytest.raises(ValidationError, match="minute\\(s\\) apart"):
        ScheduleChanged(source=SourceKey.CSA, cron="* * * * *")
    with pytest.raises(ValidationError, match="interval_minutes"):
        ScheduleChanged(source=SourceKey.CSA, interval_minutes=4)
