"""The gateway's side of the change feed, pure: next due, the answers' mapping, the edge's refusals, the
trend chart and how a change's values read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_gateway.chart import trend_chart
from fmcsa_gateway.domain import NextDue, next_due
from fmcsa_gateway.problems import ProblemError
from fmcsa_gateway.routes.changes import check_change_filters
from fmcsa_gateway.routes.pages import shown, shown_change
from fmcsa_gateway.schemas import ChangeItem, company_history, next_due_out
from fmcsa_status_view.models import HistoryPoint, HistorySeries
from fmcsa_status_view.rows import ChangeRow

LAST = datetime(2026, 11, 23, 10, 17, 30, tzinfo=UTC)


def test_an_interval_schedule_is_next_due_one_interval_after_its_last_scheduled_request() -> None:
    due = next_due(interval_minutes=60, cron=None, enabled=True, last_scheduled_at=LAST)
    assert due == NextDue(at=LAST + timedelta(minutes=60), enabled=True, within=timedelta(minutes=60))


def test_a_pair_never_scheduled_is_due_within_one_interval_at_an_unknown_time() -> None:
    due = next_due(interval_minutes=360, cron=None, enabled=True, last_scheduled_at=None)
    assert due.at is None
    assert due.within == timedelta(hours=6)
    assert next_due_out(due).within_minutes == 360


def test_a_cron_schedule_is_next_due_at_the_first_fire_after_its_last_scheduled_request() -> None:
    due = next_due(interval_minutes=None, cron="0 */4 * * *", enabled=True, last_scheduled_at=LAST)
    assert due.at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert due.within is None
    assert next_due(interval_minutes=None, cron="@daily", enabled=True, last_scheduled_at=None) == NextDue(
        at=None, enabled=True, within=None
    )


def test_a_disabled_schedule_is_never_due() -> None:
    for cron, interval in ((None, 30), ("0 * * * *", None)):
        due = next_due(interval_minutes=interval, cron=cron, enabled=False, last_scheduled_at=LAST)
        assert due == NextDue(at=None, enabled=False, within=None)
        assert next_due_out(due).model_dump() == {"at": None, "enabled": False, "within_minutes": None}


def test_a_schedule_changed_since_the_last_request_counts_from_it_with_the_new_rule() -> None:
    # the last scheduled request was 6 h ago under the old interval; the new one is 30 min: overdue
    due = next_due(interval_minutes=30, cron=None, enabled=True, last_scheduled_at=LAST)
    assert due.at == LAST + timedelta(minutes=30)


def test_an_unreadable_cron_makes_next_due_unknown_rather_than_failing_the_read() -> None:
    due = next_due(interval_minutes=None, cron="not a cron", enabled=True, last_scheduled_at=LAST)
    assert due == NextDue(at=None, enabled=True, within=None)


def _entry(**changes: object) -> ChangeRow:
    values: dict[str, object] = {
        "position": 42,
        "event_id": "change:x:basic_alert_started:unsafe_driving",
        "request_id": str(uuid4()),
        "dot": "99700001",
        "source": SourceKey.CSA,
        "kind": "basic_alert_started",
        "subject": "unsafe_driving",
        "before": {"percentile": 45, "threshold": 50},
        "after": {"percentile": 58, "threshold": 50},
        "upstream_as_of": datetime(2026, 11, 27, tzinfo=UTC),
        "observed_at": LAST,
    }
    values.update(changes)
    return ChangeRow(**values)  # type: ignore[arg-type]  # the test builds it from a dict on purpose


def test_a_change_entry_maps_to_its_answer_with_the_values_before_and_after() -> None:
    entry = _entry()
    item = ChangeItem.of(entry)
    assert item == ChangeItem(
        position=42,
        event_id=entry.event_id,
        request_id=entry.request_id,
        dot_number="99700001",
        source=SourceKey.CSA,
        kind="basic_alert_started",
        subject="unsafe_driving",
        before={"percentile": 45, "threshold": 50},
        after={"percentile": 58, "threshold": 50},
        upstream_as_of=datetime(2026, 11, 27, tzinfo=UTC),
        observed_at=LAST,
    )
    dumped = item.model_dump(mode="json")
    assert dumped["dot_number"] == "99700001"
    assert dumped["before"] == {"percentile": 45, "threshold": 50}
    assert ChangeItem.of(_entry(before=None, after=3, upstream_as_of=None)).model_dump()["before"] is None


def test_a_history_maps_each_series_with_its_points_oldest_first() -> None:
    october, november = datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    series = [
        HistorySeries(
            subject="unsafe_driving",
            points=[
                HistoryPoint(as_of=october, values={"percentile": 45.0, "measure": 1.87}),
                HistoryPoint(as_of=november, values={"percentile": 58.0, "measure": 1.87}),
            ],
        ),
        HistorySeries(
            subject="vehicle_maintenance",
            points=[HistoryPoint(as_of=october, values={"percentile": None, "measure": 2.24})],
        ),
    ]
    answer = company_history("99700001", SourceKey.CSA, series).model_dump(mode="json")
    assert answer["dot_number"] == "99700001"
    assert answer["source"] == "csa"
    assert [s["subject"] for s in answer["series"]] == ["unsafe_driving", "vehicle_maintenance"]
    assert answer["series"][0]["points"][1] == {
        "as_of": "2026-11-27T00:00:00Z",
        "values": {"percentile": 58.0, "measure": 1.87},
    }
    assert answer["series"][1]["points"][0]["values"]["percentile"] is None


def _refusal(error: pytest.ExceptionInfo[ProblemError]) -> tuple[int, str | None]:
    assert error.value.errors
    return error.value.status_code, error.value.errors[0].field


def test_a_kind_of_another_source_matches_nothing() -> None:
    assert check_change_filters(SourceKey.CSA, ChangeKind.VIOLATIONS_ADDED, None) is False
    assert check_change_filters(SourceKey.VIOLATIONS, ChangeKind.VIOLATIONS_ADDED, None) is True
    assert check_change_filters(None, ChangeKind.SAFETY_RATING_CHANGED, None) is True
    # the status service's derived kind goes with every source
    assert all(check_change_filters(source, ChangeKind.RISK_CHANGED, None) for source in SourceKey)


def test_a_since_without_a_time_zone_is_refused_with_a_422() -> None:
    with pytest.raises(ProblemError) as error:
        check_change_filters(None, None, datetime(2026, 11, 1))  # naive on purpose
    assert _refusal(error) == (422, "query.since")
    check_change_filters(None, None, datetime(2026, 11, 1, tzinfo=UTC))


def test_the_trend_chart_draws_a_line_per_basic_and_breaks_it_where_a_value_is_not_public() -> None:
    days = [datetime(2026, month, 27, tzinfo=UTC) for month in (8, 9, 10, 11)]
    chart = trend_chart(
        [
            ("unsafe_driving", list(zip(days, [45.0, 58.0, 45.0, 58.0], strict=True))),
            ("vehicle_maintenance", list(zip(days, [38.0, None, 38.0, 39.0], strict=True))),
            ("crash_indicator", [(d, None) for d in days]),
        ]
    )
    assert [line.subject for line in chart.lines] == ["unsafe_driving", "vehicle_maintenance"]
    assert chart.first == days[0].date()
    assert chart.last == days[-1].date()
    driving, maintenance = chart.lines
    assert len(driving.points) == 4
    assert len(driving.segments) == 1
    assert len(maintenance.points) == 3
    assert maintenance.unknown == 1
    assert len(maintenance.segments) == 1  # the lone point before the gap is a dot, not a line
    assert driving.points[1].y < driving.points[0].y  # a higher percentile is drawn higher
    assert driving.points[0].x < driving.points[-1].x
    ticks = dict(chart.ticks)
    assert ticks[100] < ticks[50] < ticks[0]
    assert ticks[0] == pytest.approx(chart.height - chart.axis)


def test_the_trend_chart_of_one_date_centres_its_points_and_of_nothing_draws_nothing() -> None:
    one = trend_chart([("unsafe_driving", [(LAST, 45.0)])])
    assert len(one.lines) == 1
    assert one.lines[0].segments == []
    assert one.lines[0].points[0].x == pytest.approx(one.left + (one.width - one.left) / 2)
    assert trend_chart([]).lines == []
    assert trend_chart([("unsafe_driving", [(LAST, None)])]).lines == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "none"),
        (58, "58"),
        ("OUT-OF-SERVICE", "OUT-OF-SERVICE"),
        (True, "yes"),
        ({"count": 1, "oos_count": 1}, "count: 1, oos count: 1"),
        ({"per_basic": {"hours_of_service": 1}}, "per basic: hours of service: 1"),
        ([1, 2], "1; 2"),
        ({}, "none"),
    ],
)
def test_a_change_value_reads_as_short_text(value: object, text: str) -> None:
    assert shown(value) == text


def test_a_change_of_two_mappings_shows_only_what_differs() -> None:
    before = {"alert": False, "measure": "1.87", "percentile": "45", "status": "public", "threshold": 50}
    after = {**before, "alert": True, "percentile": "58"}
    assert shown_change(before, after) == ("alert: no, percentile: 45", "alert: yes, percentile: 58")
    assert shown_change({"status": "public"}, {"status": "public"}) == ("status: public", "status: public")
    assert shown_change({"percentile": "38"}, None) == ("percentile: 38", "none")
    assert shown_change({"count": 2}, {"count": 2, "oos_count": 1}) == ("oos count: none", "oos count: 1")
