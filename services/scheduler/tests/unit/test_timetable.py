from __future__ import annotations

import gc
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CompanyRegistered, CompanyRemoved, ScheduleChanged
from fmcsa_scheduler.domain import HOUR_MS, MINUTE_MS, latest_due, to_ms
from fmcsa_scheduler.registry import Registry
from fmcsa_scheduler.timetable import DueEntry, Timetable

NOW = to_ms(datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
CSA, VIOLATIONS, INSPECTIONS = SourceKey.CSA, SourceKey.VIOLATIONS, SourceKey.INSPECTIONS


def build(companies: int, *, interval: int = 360, now_ms: int = NOW) -> tuple[Registry, Timetable]:
    registry = Registry(interval)
    for index in range(companies):
        registry.apply(CompanyRegistered(dot=str(1_000_000 + index)), occurred_ms=0)
    timetable = Timetable(registry)
    timetable.rebuild_all(now_ms=now_ms, checkpoint_ms=None)
    return registry, timetable


def run(timetable: Timetable, start_ms: int, end_ms: int, step_ms: int = 1000) -> list[DueEntry]:
    """Tick from start to end like the loop does: pop what is due, hand it back."""
    handled: list[DueEntry] = []
    for now in range(start_ms, end_ms, step_ms):
        for entry in timetable.pop_due(now, 100_000):
            handled.append(entry)
            timetable.reschedule(entry, now_ms=now)
    return handled


def test_over_one_interval_every_pair_comes_due_once_and_minutes_are_flat() -> None:
    _, timetable = build(1000, interval=120)
    start = NOW - NOW % (120 * MINUTE_MS) + 120 * MINUTE_MS  # the next slot boundary
    run(timetable, NOW, start)
    handled = run(timetable, start, start + 120 * MINUTE_MS)
    assert Counter((e.source, e.dot) for e in handled) == Counter(
        {(s, str(1_000_000 + i)): 1 for s in SourceKey for i in range(1000)}
    )
    per_minute = Counter((e.due_ms - start) // MINUTE_MS for e in handled)
    assert len(per_minute) == 120
    assert max(per_minute.values()) <= 1.2 * min(per_minute.values())
    for source in SourceKey:
        minutes = Counter((e.due_ms - start) // MINUTE_MS for e in handled if e.source is source)
        assert max(minutes.values()) <= 1.2 * min(minutes.values())


def test_cron_slots_are_spread_over_the_gap_to_the_next_fire_time() -> None:
    registry, timetable = build(1000)
    for source in SourceKey:
        registry.apply(ScheduleChanged(source=source, cron="0 */2 * * *"), occurred_ms=0)
        timetable.rebuild(source, now_ms=NOW, checkpoint_ms=None)
    start = to_ms(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    run(timetable, NOW, start)
    handled = run(timetable, start, start + 2 * HOUR_MS)
    per_minute = Counter((e.due_ms - start) // MINUTE_MS for e in handled)
    assert len(handled) == 1000 * len(SourceKey)
    assert len(per_minute) == 120
    assert max(per_minute.values()) <= 1.2 * min(per_minute.values())


def test_work_per_tick_grows_with_what_is_due_not_with_the_number_of_companies() -> None:
    pops = {}
    for companies in (2_000, 40_000):
        _, timetable = build(companies)
        before = timetable.popped
        handled = run(timetable, NOW, NOW + 10 * 1000)
        pops[companies] = (timetable.popped - before, len(handled))
    for popped, handled in pops.values():
        assert popped == handled  # nothing is looked at that is not due
    # 20 times the companies: 20 times the due pairs per second, and no more work than that
    assert pops[40_000][0] <= 20 * pops[2_000][0] + 30
    assert pops[2_000][0] <= 10  # 2,000 x 3 pairs over 6 h: under one per second


def test_a_removed_company_is_never_due_again() -> None:
    registry, timetable = build(10, interval=5)
    registry.apply(CompanyRemoved(dot="1000003"), occurred_ms=0)
    handled = run(timetable, NOW, NOW + 20 * MINUTE_MS, step_ms=10_000)
    assert "1000003" not in {e.dot for e in handled}
    assert len({e.dot for e in handled}) == 9


def test_a_company_taking_a_freed_number_is_due_once_per_slot() -> None:
    registry, timetable = build(10, interval=5)
    registry.apply(CompanyRemoved(dot="1000003"), occurred_ms=0)
    registry.apply(CompanyRegistered(dot="77"), occurred_ms=0)
    timetable.add(registry.number_of("77") or 0, now_ms=NOW)
    handled = run(timetable, NOW, NOW + 20 * MINUTE_MS, step_ms=10_000)
    slots = [e.slot_ms for e in handled if e.dot == "77" and e.source is CSA]
    assert len(slots) == len(set(slots)) >= 3


def test_a_new_company_is_due_in_every_source_within_one_interval() -> None:
    registry, timetable = build(10, interval=60)
    registry.apply(CompanyRegistered(dot="77"), occurred_ms=0)
    timetable.add(10, now_ms=NOW)
    handled = run(timetable, NOW, NOW + HOUR_MS + 1, step_ms=10_000)
    assert {e.source for e in handled if e.dot == "77"} == set(SourceKey)


def test_a_schedule_change_rebuilds_only_its_source() -> None:
    registry, timetable = build(100)
    before = {s: timetable.next_due_ms(s) for s in SourceKey}
    registry.apply(ScheduleChanged(source=CSA, interval_minutes=5), occurred_ms=NOW)
    timetable.rebuild(CSA, now_ms=NOW, checkpoint_ms=None)
    assert timetable.next_due_ms(VIOLATIONS) == before[VIOLATIONS]
    assert timetable.next_due_ms(INSPECTIONS) == before[INSPECTIONS]
    handled = run(timetable, NOW, NOW + 15 * MINUTE_MS, step_ms=10_000)
    assert Counter(e.source for e in handled)[CSA] >= 200  # every 5 minutes now
    assert all(e.slot_ms % (5 * MINUTE_MS) == 0 for e in handled if e.source is CSA)


def test_a_disabled_source_is_never_due() -> None:
    registry, timetable = build(100, interval=5)
    registry.apply(ScheduleChanged(source=INSPECTIONS, interval_minutes=5, enabled=False), occurred_ms=NOW)
    timetable.rebuild(INSPECTIONS, now_ms=NOW, checkpoint_ms=None)
    handled = run(timetable, NOW, NOW + 15 * MINUTE_MS, step_ms=10_000)
    assert INSPECTIONS not in {e.source for e in handled}
    assert timetable.next_due_ms(INSPECTIONS) is None


def test_an_entry_handed_back_after_its_schedule_changed_is_dropped() -> None:
    registry, timetable = build(100, interval=5)
    entries = timetable.pop_due(NOW + 5 * MINUTE_MS, 100)
    registry.apply(ScheduleChanged(source=CSA, interval_minutes=10), occurred_ms=NOW)
    timetable.rebuild(CSA, now_ms=NOW, checkpoint_ms=None)
    size = timetable.scheduled(CSA)
    for entry in entries:
        timetable.reschedule(entry, now_ms=NOW + 5 * MINUTE_MS)
    assert timetable.scheduled(CSA) == size


def test_a_stalled_loop_requests_only_the_latest_slot() -> None:
    registry, timetable = build(20, interval=5)
    later = NOW + 60 * MINUTE_MS
    entries = timetable.pop_due(later, 1000)
    assert len(entries) == 20 * len(SourceKey)  # once per pair, not once per missed slot
    for entry in entries:
        timing = registry.schedules[entry.source].timing()
        assert entry.slot_ms == latest_due(timing, entry.index, entry.source, later).slot_ms
        assert entry.superseded


def test_catch_up_after_downtime_puts_only_the_latest_missed_slot_in_front() -> None:
    registry = Registry(360)
    for index in range(50):
        registry.apply(CompanyRegistered(dot=str(index + 1)), occurred_ms=0)
    timetable = Timetable(registry)
    timetable.rebuild_all(now_ms=NOW, checkpoint_ms=NOW - 48 * HOUR_MS)
    entries = timetable.pop_due(NOW, 1000)
    assert len(entries) == 50 * len(SourceKey)
    assert not any(e.superseded for e in entries)
    assert all(NOW - 6 * HOUR_MS < e.due_ms <= NOW for e in entries)
    assert timetable.pop_due(NOW, 1000) == []


def test_retry_puts_the_entry_back_as_it_was() -> None:
    _, timetable = build(10, interval=5)
    first = timetable.pop_due(NOW + 5 * MINUTE_MS, 1)[0]
    timetable.retry(first)
    again = timetable.pop_due(NOW + 5 * MINUTE_MS, 1)[0]
    assert (again.source, again.dot, again.slot_ms) == (first.source, first.dot, first.slot_ms)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident set size from /proc")
def test_100000_companies_times_every_source_take_well_under_150_mb() -> None:
    gc.collect()
    before = _rss_bytes()
    registry, timetable = build(100_000)
    grown = _rss_bytes() - before
    assert len(registry) == 100_000
    assert sum(timetable.scheduled(s) for s in SourceKey) == 100_000 * len(SourceKey)
    print(f"registry + timetable of 100,000 x {len(SourceKey)}: {grown / 1e6:.1f} MB")
    assert grown < 60e6
