"""Due companies held back by the in-flight cap: they wait in the timetable and are handed out the
stalest first (never synced before all), by the staleness each company has when it is taken."""

from __future__ import annotations

from datetime import UTC, datetime

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CompanyRegistered, CompanyRemoved, ScheduleChanged
from fmcsa_scheduler.capacity import NEVER_SYNCED
from fmcsa_scheduler.domain import MINUTE_MS, to_ms
from fmcsa_scheduler.registry import Registry
from fmcsa_scheduler.staleness import Staleness
from fmcsa_scheduler.timetable import Timetable

NOW = to_ms(datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
CSA, VIOLATIONS = SourceKey.CSA, SourceKey.VIOLATIONS


def dot(index: int) -> str:
    return str(1_000_000 + index)


def build(companies: int, *, interval: int = 5) -> tuple[Registry, Timetable, Staleness]:
    registry = Registry(interval)
    for index in range(companies):
        registry.apply(CompanyRegistered(dot=dot(index)), occurred_ms=0)
    staleness = Staleness(registry)
    timetable = Timetable(registry)
    timetable.rebuild_all(now_ms=NOW, checkpoint_ms=None)
    staleness.bind()
    return registry, timetable, staleness


def hold_everything_due(timetable: Timetable, staleness: Staleness, now_ms: int) -> None:
    for entry in timetable.pop_due(now_ms, 100_000):
        timetable.hold(entry, staleness.of(entry.source, entry.index))


def test_the_stalest_waiting_company_is_always_taken_next_never_synced_first() -> None:
    _, timetable, staleness = build(20)
    synced_at = {3: 5_000, 8: 1_000, 11: 3_000, 15: 2_000}  # the others were never synced
    for index, ms in synced_at.items():
        staleness.synced(CSA, dot(index), ms)
    later = NOW + 5 * MINUTE_MS
    hold_everything_due(timetable, staleness, later)
    assert timetable.waiting(CSA) == 20
    taken: list[int] = []
    while batch := timetable.take_waiting(CSA, 3, later, lambda i: staleness.of(CSA, i)):
        taken += [entry.index for entry in batch]
        for entry in batch:
            timetable.reschedule(entry, now_ms=later)
    never = [i for i in range(20) if i not in synced_at]
    assert taken == [*never, 8, 15, 11, 3]
    assert timetable.waiting(CSA) == 0


def test_a_company_synced_while_it_waited_goes_behind_the_others() -> None:
    _, timetable, staleness = build(3)
    later = NOW + 5 * MINUTE_MS
    hold_everything_due(timetable, staleness, later)
    staleness.synced(CSA, dot(0), 9_000)  # e.g. a manual request answered meanwhile
    order = [e.index for e in timetable.take_waiting(CSA, 3, later, lambda i: staleness.of(CSA, i))]
    assert order == [1, 2, 0]


def test_an_entry_that_waited_past_its_slot_is_for_the_latest_slot() -> None:
    _, timetable, _staleness = build(1)
    first = timetable.pop_due(NOW + 5 * MINUTE_MS, 10)
    entry = next(e for e in first if e.source is CSA)
    timetable.hold(entry, NEVER_SYNCED)
    much_later = entry.due_ms + 12 * MINUTE_MS  # two more 5-minute slots went by
    [late] = timetable.take_waiting(CSA, 1, much_later, lambda i: NEVER_SYNCED)
    assert late.superseded
    assert late.slot_ms == entry.slot_ms + 10 * MINUTE_MS
    assert late.due_ms == entry.due_ms + 10 * MINUTE_MS


def test_a_schedule_change_or_a_removal_drops_what_waits() -> None:
    registry, timetable, staleness = build(4)
    later = NOW + 5 * MINUTE_MS
    hold_everything_due(timetable, staleness, later)
    registry.apply(ScheduleChanged(source=CSA, interval_minutes=10), occurred_ms=later)
    timetable.rebuild(CSA, now_ms=later, checkpoint_ms=None)
    assert timetable.waiting(CSA) == 0
    assert timetable.take_waiting(CSA, 10, later, lambda i: NEVER_SYNCED) == []
    registry.apply(CompanyRemoved(dot=dot(1)), occurred_ms=later)
    taken = timetable.take_waiting(VIOLATIONS, 10, later, lambda i: NEVER_SYNCED)
    assert sorted(e.index for e in taken) == [0, 2, 3]


def test_a_waiting_number_given_to_a_new_company_is_not_scheduled_twice() -> None:
    registry, timetable, staleness = build(2)
    later = NOW + 5 * MINUTE_MS
    hold_everything_due(timetable, staleness, later)
    registry.apply(CompanyRemoved(dot=dot(0)), occurred_ms=later)
    registry.apply(CompanyRegistered(dot="7777777"), occurred_ms=later)  # takes number 0
    staleness.forget(0)
    timetable.add(0, now_ms=later)  # the waiting item serves the new company: nothing pushed
    assert timetable.scheduled(CSA) == 0
    taken = timetable.take_waiting(CSA, 10, later, lambda i: staleness.of(CSA, i))
    assert sorted(e.dot for e in taken) == [dot(1), "7777777"]


def test_last_syncs_read_before_the_registry_is_folded_are_kept_by_dot_until_bound() -> None:
    registry = Registry(5)
    staleness = Staleness(registry)
    staleness.seed({(CSA, dot(1)): 4_000, (CSA, "9999999"): 1_000})  # the second is not registered
    staleness.synced(CSA, dot(1), 3_000)  # older than the seed: the later time wins
    for index in range(3):
        registry.apply(CompanyRegistered(dot=dot(index)), occurred_ms=0)
    staleness.bind()
    assert [staleness.of(CSA, i) for i in range(3)] == [NEVER_SYNCED, 4_000, NEVER_SYNCED]
    assert staleness.of(VIOLATIONS, 1) == NEVER_SYNCED
    staleness.synced(CSA, dot(2), 6_000)
    staleness.forget(1)
    assert [staleness.of(CSA, i) for i in range(3)] == [NEVER_SYNCED, NEVER_SYNCED, 6_000]
