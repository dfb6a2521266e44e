from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_scheduler.domain import (
    HOUR_MS,
    MINUTE_MS,
    Backoff,
    IntervalTiming,
    InvalidSchedule,
    Publish,
    Schedule,
    Skip,
    SkipReason,
    after_marker_held,
    backoff_after_failure,
    backoff_delay_ms,
    cron_timing,
    first_due,
    from_ms,
    in_backoff,
    is_catch_up,
    latest_due,
    next_due,
    slot_of,
    slot_request_id,
    spread_offset_ms,
    to_ms,
    validate_schedule,
    van_der_corput,
)

NOW = to_ms(datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
SIX_HOURS = Schedule(interval_minutes=360)
CSA = SourceKey.CSA


def check(interval: int | None = None, cron: str | None = None) -> Schedule | InvalidSchedule:
    return validate_schedule(interval_minutes=interval, cron=cron, enabled=True, since_ms=NOW)


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "valid"), [(4, False), (5, True), (1440, True), (1441, False), (0, False)]
)
def test_an_interval_is_5_to_1440_minutes(minutes: int, valid: bool) -> None:
    assert isinstance(check(minutes), Schedule) is valid


def test_a_schedule_has_exactly_one_of_interval_and_cron() -> None:
    assert isinstance(check(), InvalidSchedule)
    assert isinstance(check(60, "0 * * * *"), InvalidSchedule)


@pytest.mark.parametrize(
    "cron", ["0 */6 * * *", "*/5 * * * *", "30 9 * * 1-5", "@hourly", "@daily", "0 3 1 * *"]
)
def test_a_valid_cron_expression_is_accepted(cron: str) -> None:
    schedule = check(cron=cron)
    assert isinstance(schedule, Schedule)
    assert schedule.cron == cron
    assert schedule.since_ms == NOW


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("not a cron", "5 fields"),
        ("61 * * * *", "not valid"),
        ("0 0 * * * *", "5 fields"),  # six fields: seconds are not a thing here
        ("@reboot", "5 fields"),
        ("*/3 * * * *", "3 minute"),
        ("*/7 * * * *", "4 minute"),  # :56 to the next hour's :00 is 4 minutes
        ("58 23 * * *,0 0 * * *", "5 fields"),
        ("0,58 0,23 * * *", "2 minute"),  # 23:58 then 00:00
        ("0 0 30 2 *", "not valid"),  # February 30th never comes
    ],
)
def test_a_bad_cron_expression_is_refused_with_a_reason(cron: str, why: str) -> None:
    refused = check(cron=cron)
    assert isinstance(refused, InvalidSchedule)
    assert why in refused.reason


# --- slots and due times -----------------------------------------------------------------------------


def test_interval_slots_are_counted_from_the_epoch() -> None:
    start, end = IntervalTiming(360).slot_at(NOW)
    assert from_ms(start) == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert end - start == 6 * HOUR_MS


def test_cron_slots_run_from_one_fire_time_to_the_next() -> None:
    timing = cron_timing("0 9,17 * * *")
    start, end = timing.slot_at(NOW)
    assert from_ms(start) == datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
    assert from_ms(end) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert timing.slot_at(end) == (end, to_ms(datetime(2026, 11, 23, 17, 0, tzinfo=UTC)))


def test_due_time_is_inside_its_slot_and_the_same_every_time() -> None:
    timing = SIX_HOURS.timing()
    for index in (0, 1, 359, 360, 12_345):
        due = next_due(timing, index, CSA, NOW)
        assert due.slot_ms <= due.due_ms < due.slot_ms + 6 * HOUR_MS
        assert due.due_ms > NOW
        assert due == next_due(timing, index, CSA, NOW)
        assert slot_of(timing, due.due_ms) == due.slot_ms
        previous = latest_due(timing, index, CSA, NOW)
        assert previous.due_ms <= NOW
        assert due.due_ms - previous.due_ms == 6 * HOUR_MS


def test_a_company_keeps_its_offset_whoever_registers_after_it() -> None:
    # the offset depends on the company's number and the slot length only
    assert spread_offset_ms(7, CSA, 360 * MINUTE_MS) == 7 * MINUTE_MS + 0
    assert spread_offset_ms(367, CSA, 360 * MINUTE_MS) == 7 * MINUTE_MS + 30_000
    assert spread_offset_ms(727, CSA, 360 * MINUTE_MS) == 7 * MINUTE_MS + 15_000


def test_sources_of_one_company_are_due_in_different_minutes() -> None:
    offsets = {spread_offset_ms(0, source, 360 * MINUTE_MS) // MINUTE_MS for source in SourceKey}
    assert offsets == {0, 90, 180, 270}  # four sources: a quarter of the slot apart


def test_van_der_corput_halves_the_gaps() -> None:
    assert [van_der_corput(n) for n in range(6)] == [0.0, 0.5, 0.25, 0.75, 0.125, 0.625]


def minute_counts(companies: int, source: SourceKey, gap_minutes: int) -> Counter[int]:
    counts: Counter[int] = Counter({minute: 0 for minute in range(gap_minutes)})
    for index in range(companies):
        counts[spread_offset_ms(index, source, gap_minutes * MINUTE_MS) // MINUTE_MS] += 1
    return counts


@pytest.mark.parametrize(
    ("companies", "gap_minutes"), [(1000, 360), (1000, 120), (1999, 360), (100_000, 1440)]
)
def test_each_minute_of_a_slot_gets_the_floor_or_the_ceiling_of_the_average(
    companies: int, gap_minutes: int
) -> None:
    for source in SourceKey:
        counts = set(minute_counts(companies, source, gap_minutes).values())
        assert counts <= {companies // gap_minutes, -(-companies // gap_minutes)}


@pytest.mark.parametrize(("companies", "gap_minutes"), [(1000, 120), (1000, 60), (2000, 360), (7200, 1440)])
def test_busiest_minute_has_at_most_1_2_times_the_requests_of_the_quietest(
    companies: int, gap_minutes: int
) -> None:
    total: Counter[int] = Counter()
    for source in SourceKey:
        counts = minute_counts(companies, source, gap_minutes)
        assert max(counts.values()) <= 1.2 * min(counts.values())
        total.update(counts)
    assert max(total.values()) <= 1.2 * min(total.values())


def test_requests_are_spread_over_the_seconds_of_a_minute() -> None:
    # 100,000 companies every 6 hours: about 278 per minute and source, never two in the same 100 ms
    seconds = [spread_offset_ms(index, CSA, 360 * MINUTE_MS) % MINUTE_MS for index in range(0, 100_000, 360)]
    assert len(set(seconds)) == len(seconds)
    assert max(Counter(s // 100 for s in seconds).values()) == 1


# --- catch-up ----------------------------------------------------------------------------------------


def test_after_downtime_only_the_latest_missed_slot_is_due() -> None:
    timing = SIX_HOURS.timing()
    two_days_ago = NOW - 48 * HOUR_MS
    due = first_due(SIX_HOURS, 5, CSA, now_ms=NOW, checkpoint_ms=two_days_ago)
    assert due == latest_due(timing, 5, CSA, NOW)
    assert due.due_ms <= NOW  # due at once
    assert due.due_ms > NOW - 6 * HOUR_MS  # and it is the latest one, not any of the seven before it


def test_a_slot_handled_before_the_checkpoint_is_not_caught_up() -> None:
    latest = latest_due(SIX_HOURS.timing(), 5, CSA, NOW)
    due = first_due(SIX_HOURS, 5, CSA, now_ms=NOW, checkpoint_ms=latest.due_ms)
    assert due.due_ms > NOW
    assert due.slot_ms == latest.slot_ms + 6 * HOUR_MS


def test_a_first_start_catches_up_nothing() -> None:
    due = first_due(SIX_HOURS, 5, CSA, now_ms=NOW, checkpoint_ms=None)
    assert due == next_due(SIX_HOURS.timing(), 5, CSA, NOW)


def test_a_changed_schedule_never_fires_a_slot_that_started_before_the_change() -> None:
    changed = Schedule(interval_minutes=360, since_ms=NOW)  # 07:30, inside the 06:00 slot
    for index in range(400):
        due = first_due(changed, index, CSA, now_ms=NOW, checkpoint_ms=NOW - HOUR_MS)
        assert from_ms(due.slot_ms) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_late_or_superseding_request_is_a_catch_up() -> None:
    assert is_catch_up(NOW - 1, started_ms=NOW, superseded=False)
    assert is_catch_up(NOW + 1, started_ms=NOW, superseded=True)
    assert not is_catch_up(NOW + 1, started_ms=NOW, superseded=False)


# --- requests and markers ----------------------------------------------------------------------------


def test_a_slot_has_one_request_id_everywhere() -> None:
    assert slot_request_id(CSA, "42", NOW) == slot_request_id(CSA, "42", NOW)
    assert slot_request_id(CSA, "42", NOW) != slot_request_id(CSA, "42", NOW + 6 * HOUR_MS)
    assert slot_request_id(CSA, "42", NOW) != slot_request_id(SourceKey.VIOLATIONS, "42", NOW)


def held(request_id: UUID, *, taken_ms: int, wanted: UUID) -> Publish | Skip:
    return after_marker_held(
        held_request_id=request_id,
        held_taken_ms=taken_ms,
        request_id=wanted,
        now_ms=NOW,
        republish_window_ms=240_000,
    )


def test_a_marker_of_another_request_means_in_flight() -> None:
    assert held(uuid4(), taken_ms=NOW - MINUTE_MS, wanted=uuid4()) == Skip(SkipReason.IN_FLIGHT)


def test_our_own_recent_marker_is_published_again_and_an_old_one_is_not() -> None:
    rid = uuid4()
    assert held(rid, taken_ms=NOW - MINUTE_MS, wanted=rid) == Publish(fresh=False)
    assert held(rid, taken_ms=NOW - 10 * MINUTE_MS, wanted=rid) == Skip(SkipReason.ALREADY_REQUESTED)


# --- back-off ----------------------------------------------------------------------------------------


def test_back_off_doubles_the_interval_up_to_a_day() -> None:
    gap, day = 60 * MINUTE_MS, 24 * HOUR_MS
    assert [backoff_delay_ms(f, gap, day) // gap for f in range(1, 7)] == [1, 3, 7, 15, 24, 24]
    assert backoff_delay_ms(64, 5 * MINUTE_MS, day) == day


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_the_next_request_after_a_failure_waits_2_to_the_failures_slots(failures: int) -> None:
    timing = Schedule(interval_minutes=60).timing()
    failed = latest_due(timing, 3, CSA, NOW)
    backoff: Backoff | None = None
    for seq in range(failures):
        at = failed.due_ms + 5_000
        backoff = backoff_after_failure(
            backoff, kind="not_found", failed_at_ms=at, gap_ms=HOUR_MS, max_ms=24 * HOUR_MS, seq=seq
        )
    due = next_due(timing, 3, CSA, failed.due_ms)
    while in_backoff(backoff, due.due_ms):
        due = next_due(timing, 3, CSA, due.due_ms)
    assert due.slot_ms - failed.slot_ms == 2**failures * HOUR_MS


def test_no_back_off_without_failures() -> None:
    assert not in_backoff(None, NOW)
    assert not in_backoff(Backoff(1, NOW, 1), NOW)
    assert in_backoff(Backoff(1, NOW + 1, 1), NOW)


def test_a_schedule_taking_effect_later_starts_at_its_first_slot() -> None:
    tomorrow = NOW + 24 * HOUR_MS + 7 * MINUTE_MS
    due = first_due(Schedule(interval_minutes=5, since_ms=tomorrow), 3, CSA, now_ms=NOW, checkpoint_ms=None)
    assert due.slot_ms == tomorrow - tomorrow % (5 * MINUTE_MS) + 5 * MINUTE_MS
