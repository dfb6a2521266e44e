from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CompanyRegistered,
    CompanyRemoved,
    Counts,
    ErrorKind,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_scheduler.domain import HOUR_MS, Backoff, to_ms
from fmcsa_scheduler.outcomes import BackoffCleared, BackoffSet, Outcomes
from fmcsa_scheduler.registry import (
    CompanyAdded,
    CompanyDropped,
    Registry,
    ScheduleRejected,
    ScheduleSet,
    Unchanged,
)

NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
CSA = SourceKey.CSA


def registry_with(*dots: str) -> Registry:
    registry = Registry(360)
    for dot in dots:
        registry.apply(CompanyRegistered(dot=dot), occurred_ms=0)
    return registry


def test_companies_are_numbered_densely_in_registration_order() -> None:
    registry = registry_with("30", "10", "20")
    assert [registry.number_of(dot) for dot in ("30", "10", "20")] == [0, 1, 2]
    assert len(registry) == 3


def test_registering_twice_changes_nothing() -> None:
    registry = registry_with("30")
    assert registry.apply(CompanyRegistered(dot="30"), occurred_ms=0) == Unchanged()
    assert len(registry) == 1


def test_a_removed_companys_number_goes_to_the_next_registration_lowest_first() -> None:
    registry = registry_with("1", "2", "3", "4")
    assert registry.apply(CompanyRemoved(dot="3"), occurred_ms=0) == CompanyDropped("3", 2)
    assert registry.apply(CompanyRemoved(dot="2"), occurred_ms=0) == CompanyDropped("2", 1)
    assert registry.apply(CompanyRemoved(dot="999"), occurred_ms=0) == Unchanged()
    assert registry.apply(CompanyRegistered(dot="5"), occurred_ms=0) == CompanyAdded("5", 1)
    assert registry.apply(CompanyRegistered(dot="6"), occurred_ms=0) == CompanyAdded("6", 2)
    assert registry.apply(CompanyRegistered(dot="7"), occurred_ms=0) == CompanyAdded("7", 4)


def test_two_replicas_folding_the_same_events_number_alike() -> None:
    events = [CompanyRegistered(dot=str(d)) for d in range(1, 50)] + [
        CompanyRemoved(dot=str(d)) for d in (3, 9)
    ]
    events += [CompanyRegistered(dot="77"), CompanyRegistered(dot="3")]
    one, two = Registry(360), Registry(360)
    for event in events:
        one.apply(event, occurred_ms=0)
        two.apply(event, occurred_ms=0)
    assert one.dots == two.dots


def test_every_source_starts_with_the_default_interval() -> None:
    registry = Registry(240)
    assert {s.interval_minutes for s in registry.schedules.values()} == {240}
    assert all(s.enabled for s in registry.schedules.values())


def test_a_schedule_change_sets_one_source_and_takes_effect_when_it_occurred() -> None:
    registry = Registry(360)
    change = registry.apply(ScheduleChanged(source=CSA, interval_minutes=60), occurred_ms=1234)
    assert isinstance(change, ScheduleSet)
    assert registry.schedules[CSA].interval_minutes == 60
    assert registry.schedules[CSA].since_ms == 1234
    assert registry.schedules[SourceKey.VIOLATIONS].interval_minutes == 360


def test_the_same_schedule_saved_again_changes_nothing() -> None:
    registry = Registry(360)
    registry.apply(ScheduleChanged(source=CSA, cron="0 */2 * * *"), occurred_ms=1000)
    assert registry.apply(ScheduleChanged(source=CSA, cron="0 */2 * * *"), occurred_ms=9000) == Unchanged()
    assert registry.schedules[CSA].since_ms == 1000


def test_a_bad_cron_is_rejected_and_the_old_schedule_stays() -> None:
    registry = Registry(360)
    # ScheduleChanged refuses such a cron itself; the registry still refuses one that reaches it unchecked
    old = ScheduleChanged.model_construct(source=CSA, cron="*/2 * * * *", interval_minutes=None, enabled=True)
    change = registry.apply(old, occurred_ms=0)
    assert isinstance(change, ScheduleRejected)
    assert registry.schedules[CSA].interval_minutes == 360


# --- outcomes and back-off ---------------------------------------------------------------------------


def failed(*, retryable: bool = False, request_id: object = None) -> SourceFailed:
    return SourceFailed(
        request_id=request_id or uuid4(),
        dot="42",
        source=CSA,
        kind=ErrorKind.NOT_FOUND,
        retryable=retryable,
        attempts=1,
        message="no such carrier",
        finished_at=NOW,
    )


def synced() -> SourceSynced:
    return SourceSynced(
        request_id=uuid4(),
        dot="42",
        source=CSA,
        counts=Counts(fetched=1),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )


def requested(trigger: Trigger) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(),
        dot="42",
        source=CSA,
        trigger=trigger,
        requested_by="someone",
        requested_at=NOW,
        deadline=NOW + timedelta(minutes=30),
        slot=NOW if trigger is not Trigger.MANUAL else None,
    )


def answer(outcomes: Outcomes, event: SourceFailed | SourceSynced, seq: int) -> object:
    return outcomes.answered(event, seq=seq, gap_ms=HOUR_MS, max_backoff_ms=24 * HOUR_MS)


def test_a_non_retryable_failure_starts_a_back_off_and_a_second_doubles_it() -> None:
    outcomes = Outcomes()
    first = answer(outcomes, failed(), 10)
    assert first == BackoffSet((CSA, "42"), Backoff(1, to_ms(NOW) + HOUR_MS, 10, "not_found"))
    second = answer(outcomes, failed(), 11)
    assert second == BackoffSet((CSA, "42"), Backoff(2, to_ms(NOW) + 3 * HOUR_MS, 11, "not_found"))


def test_the_same_outcome_applied_twice_counts_once() -> None:
    outcomes = Outcomes()
    event = failed()
    answer(outcomes, event, 10)
    assert answer(outcomes, event, 10) is None
    assert outcomes.backoffs[(CSA, "42")].failures == 1


def test_a_retryable_final_failure_neither_starts_nor_ends_a_back_off() -> None:
    outcomes = Outcomes()
    assert answer(outcomes, failed(retryable=True), 5) is None
    answer(outcomes, failed(), 6)
    assert answer(outcomes, failed(retryable=True), 7) is None
    assert outcomes.backoffs[(CSA, "42")].failures == 1


def test_a_success_ends_the_back_off() -> None:
    outcomes = Outcomes()
    answer(outcomes, failed(), 5)
    assert answer(outcomes, synced(), 6) == BackoffCleared((CSA, "42"))
    assert outcomes.backoffs == {}


def test_a_manual_trigger_ends_the_back_off_and_a_scheduled_request_does_not() -> None:
    outcomes = Outcomes()
    answer(outcomes, failed(), 5)
    assert outcomes.requested(requested(Trigger.SCHEDULED), seq=6) is None
    assert outcomes.requested(requested(Trigger.MANUAL), seq=7) == BackoffCleared((CSA, "42"))


def test_a_back_off_loaded_from_storage_ignores_the_replay_of_what_it_already_counted() -> None:
    outcomes = Outcomes({(CSA, "42"): Backoff(3, to_ms(NOW) + 7 * HOUR_MS, 20)})
    assert answer(outcomes, failed(), 18) is None
    assert outcomes.backoffs[(CSA, "42")].failures == 3


def test_open_requests_end_with_their_outcome_or_their_deadline() -> None:
    outcomes = Outcomes()
    request = requested(Trigger.SCHEDULED)
    outcomes.requested(request, seq=1)
    assert outcomes.open_by_source()[CSA] == 1
    answer(outcomes, failed(retryable=True, request_id=uuid4()), 2)  # another request's outcome
    assert outcomes.open_by_source()[CSA] == 1
    answer(outcomes, failed(retryable=True, request_id=request.request_id), 3)
    assert outcomes.open_by_source()[CSA] == 0
    outcomes.requested(requested(Trigger.SCHEDULED), seq=4)
    outcomes.expire(to_ms(NOW + timedelta(minutes=31)))
    assert outcomes.open_by_source()[CSA] == 0


def test_a_request_being_sent_counts_as_open_at_once_until_its_outcome_or_a_failed_publish() -> None:
    outcomes = Outcomes()
    request = requested(Trigger.SCHEDULED)
    outcomes.sent(request)  # before the fold reads it back: the next tick sees no room it just used
    assert outcomes.open_by_source()[CSA] == 1
    outcomes.requested(request, seq=1)  # the fold reads it back: still one
    assert outcomes.open_by_source()[CSA] == 1
    answer(outcomes, failed(retryable=True, request_id=request.request_id), 2)
    assert outcomes.open_by_source()[CSA] == 0
    unsent = requested(Trigger.SCHEDULED)
    outcomes.sent(unsent)
    outcomes.unsent(requested(Trigger.SCHEDULED))  # another request of the pair: not this one's
    assert outcomes.open_by_source()[CSA] == 1
    outcomes.unsent(unsent)  # its publish failed, or the stream held it already
    assert outcomes.open_by_source()[CSA] == 0
