from datetime import UTC, date, datetime

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_gateway.chart import outcome_chart
from fmcsa_gateway.domain import (
    ImportRefused,
    InvalidRow,
    ScheduleRefused,
    ScheduleSpec,
    check_schedule,
    csv_rows,
    json_rows,
    plan_import,
    plan_trigger,
)
from fmcsa_gateway.live import Change, Subscription, change_of
from fmcsa_gateway.routes.pages import ago

NOW_S = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
INJECTIONS = [
    "1' OR '1'='1",
    "123 OR 1=1",
    "123) OR (1=1",
    "1;DROP TABLE x",
    "123&$where=1=1",
    "12.3",
    "*",
    ">",
    "",
    " ",
    "123456789",
    "-1",
    "0",
    "00000000",
    "\uff11\uff12\uff13",
    "12 3",
    "0x10",
    "1e3",
    "123'",
    "$limit=1",
]


def test_a_csv_with_a_header_reads_the_named_columns_with_their_lines() -> None:
    text = "name,usdot\nAcme,00123\n\nBeta,456\n"
    assert list(csv_rows(text)) == [(2, "00123", "Acme"), (4, "456", "Beta")]


def test_a_csv_without_a_header_reads_dot_then_name() -> None:
    assert list(csv_rows("123,Acme\n456\n")) == [(1, "123", "Acme"), (2, "456", None)]


def test_an_import_counts_accepted_duplicate_and_invalid_rows_by_line() -> None:
    rows = csv_rows("dot_number,name\n1,a\n2,b\nabc,c\n0001,d\n3,e\n99999999999,f\n")
    plan = plan_import(rows, registered=frozenset({"3"}), max_rows=100)
    assert plan.accepted == [("1", "a"), ("2", "b")]
    assert plan.duplicate == 2  # 0001 repeats 1; 3 is already registered
    assert [(r.line, r.value) for r in plan.invalid] == [(4, "abc"), (7, "99999999999")]
    assert plan.rows == 6


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_and_malformed_dots_never_reach_the_plan(value: str) -> None:
    plan = plan_import([(1, value, None)], registered=frozenset(), max_rows=10)
    assert plan.accepted == []
    assert plan.invalid == [InvalidRow(1, value[:40], plan.invalid[0].reason)]


def test_json_rows_take_numbers_strings_and_objects() -> None:
    rows = json_rows([123, "456", {"dot_number": "789", "name": "C"}, {"name": "no dot"}, True, None])
    plan = plan_import(rows, registered=frozenset(), max_rows=10)
    assert plan.accepted == [("123", None), ("456", None), ("789", "C")]
    assert [r.line for r in plan.invalid] == [4, 5, 6]


def test_a_json_import_that_is_not_a_list_is_refused_whole() -> None:
    with pytest.raises(ImportRefused):
        json_rows({"dot_number": "1"})


def test_an_import_above_the_row_limit_is_refused_whole() -> None:
    with pytest.raises(ImportRefused, match="at most 3 rows"):
        plan_import(((i, str(i), None) for i in range(1, 5)), registered=frozenset(), max_rows=3)


def test_a_name_that_is_not_text_or_too_long_makes_its_row_invalid() -> None:
    plan = plan_import([(1, "1", 5), (2, "2", "x" * 201), (3, "3", "  ")], registered=frozenset(), max_rows=5)
    assert plan.accepted == [("3", None)]
    assert [r.reason for r in plan.invalid] == ["name must be text", "name is longer than 200 characters"]


@pytest.mark.parametrize("text", ['1,"unclosed', '1,"a"b\n'])
def test_unreadable_csv_is_refused_whole(text: str) -> None:
    with pytest.raises(ImportRefused, match="CSV"):
        list(csv_rows(text))


def test_spaces_around_an_imported_dot_are_trimmed_and_nothing_else_is_forgiven() -> None:
    plan = plan_import([(1, " 123\n", None), (2, "1 23", None)], registered=frozenset(), max_rows=5)
    assert plan.accepted == [("123", None)]
    assert [r.line for r in plan.invalid] == [2]


@pytest.mark.parametrize(
    ("interval", "cron", "field", "reason"),
    [
        (4, None, "interval_minutes", "5 to 1440, got 4"),
        (1441, None, "interval_minutes", "5 to 1440, got 1441"),
        (None, None, "interval_minutes", "exactly one"),
        (30, "0 * * * *", "interval_minutes", "exactly one"),
        (None, "* * * * *", "cron", "1 minute(s) apart"),
        (None, "*/2 * * * *", "cron", "2 minute(s) apart"),
        (None, "61 * * * *", "cron", "not valid"),
        (None, "every day", "cron", "5 fields"),
        (None, "0 0 * * * *", "cron", "5 fields"),
        (None, "@reboot", "cron", "5 fields"),
    ],
)
def test_schedules_outside_the_rules_are_refused_with_the_reason(
    interval: int | None, cron: str | None, field: str, reason: str
) -> None:
    refused = check_schedule(interval_minutes=interval, cron=cron, enabled=True, now_s=NOW_S)
    assert isinstance(refused, ScheduleRefused)
    assert refused.field == field
    assert reason in refused.reason


@pytest.mark.parametrize(
    ("interval", "cron", "expected"),
    [
        (5, None, ScheduleSpec(5, None, True)),
        (1440, None, ScheduleSpec(1440, None, True)),
        (None, " */5   * * * * ", ScheduleSpec(None, "*/5 * * * *", True)),
        (None, "@hourly", ScheduleSpec(None, "@hourly", True)),
        (None, "55,0 * * * *", ScheduleSpec(None, "55,0 * * * *", True)),
    ],
)
def test_schedules_inside_the_rules_are_accepted(
    interval: int | None, cron: str | None, expected: ScheduleSpec
) -> None:
    assert check_schedule(interval_minutes=interval, cron=cron, enabled=True, now_s=NOW_S) == expected


def test_a_trigger_plans_each_pair_once_and_all_sources_by_default() -> None:
    assert plan_trigger(["1", "2", "1"], [SourceKey.CSA, SourceKey.CSA]) == [
        ("1", SourceKey.CSA),
        ("2", SourceKey.CSA),
    ]
    assert plan_trigger(["7"], None) == [("7", s) for s in SourceKey]


def test_changes_are_read_from_subjects() -> None:
    assert change_of("fmcsa.evt.source_synced.csa.123", 9) == Change("source_synced", 9, "123", "csa")
    assert change_of("fmcsa.evt.company_registered.42", 3) == Change("company_registered", 3, "42", None)
    assert change_of("fmcsa.evt.schedule_changed.violations", 4) == Change(
        "schedule_changed", 4, None, "violations"
    )
    assert change_of("fmcsa.dlq.x.y", 5) is None


async def test_a_subscriber_that_falls_behind_gets_one_resync_instead_of_the_backlog() -> None:
    subscription = Subscription(size=2)
    for seq in range(1, 6):
        subscription.offer(Change("source_synced", seq, "1", "csa"))
    assert [(await subscription.next(0.01)) for _ in range(4)] == [
        Change("source_synced", 1, "1", "csa"),
        Change("source_synced", 2, "1", "csa"),
        Change("resync", 0),
        None,
    ]


def test_the_chart_spans_the_days_up_to_the_newest_and_scales_to_the_peak() -> None:
    chart = outcome_chart(
        [(date(2026, 11, 20), 3, 1), (date(2026, 11, 22), 1, 0), (date(2026, 11, 22), 0, 0)], days=5
    )
    assert [b.day.day for b in chart.bars] == [18, 19, 20, 21, 22]
    assert chart.peak == 4
    tallest = chart.bars[2]
    assert tallest.ok_height + tallest.bad_height == pytest.approx(chart.height - chart.axis)
    assert outcome_chart([], days=5).bars == []


def test_relative_times_read_as_people_say_them() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert ago(None, now) == "never"
    assert ago(datetime(2026, 11, 23, 11, 57, tzinfo=UTC), now) == "3 min ago"
    assert ago(datetime(2026, 11, 23, 14, 0, tzinfo=UTC), now) == "in 2 h"
