"""The fold, case by case: each test names one rule of the status contract (ARCHITECTURE.md)."""

from __future__ import annotations

from datetime import timedelta

from status_support import (
    at,
    attempt_failed,
    facts,
    failed,
    fold_all,
    registered,
    removed,
    request,
    synced,
    timed,
)

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ErrorKind, ScheduleChanged
from fmcsa_status.domain.fold import (
    CONFLICTING_OUTCOME,
    CONFLICTING_REQUEST,
    IMPOSSIBLE_TIMES,
    MISMATCHED_OUTCOME,
    Loaded,
    fold,
)
from fmcsa_status.domain.memory import MemoryProjection
from fmcsa_status.domain.state import DayCount, SyncState

CSA = SourceKey.CSA
DOT = "2847193"


def test_a_request_then_its_success_makes_the_source_succeeded() -> None:
    req = request(DOT, CSA, 0)
    p = fold_all(facts([req, synced(req, 1, fetched=4)]))
    pair = p.pairs[(DOT, CSA)]
    assert pair.state == SyncState.SUCCEEDED
    assert pair.last_success_at == synced(req, 1).finished_at
    assert (pair.fetched, pair.consecutive_failures, pair.requests, pair.succeeded) == (4, 0, 1, 1)
    assert pair.last_summary == {"fetched": 4, "note": "run 1"}
    company = p.companies[DOT]
    assert company.success
    assert not company.failing
    assert not company.never_synced
    entry = p.entries[str(req.request_id)]
    assert entry.status == SyncState.SUCCEEDED
    assert entry.duration_ms == 2000


def test_a_success_that_only_checked_the_upstream_says_so_until_a_fetch_follows() -> None:
    first, second, third = request(DOT, CSA, 0), request(DOT, CSA, 10), request(DOT, CSA, 20)
    checked = synced(second, 11, fetched=0).model_copy(
        update={"checked_unchanged": True, "retrieved_at": synced(first, 1).retrieved_at}
    )
    p = fold_all(facts([first, synced(first, 1), second, checked]))
    pair = p.pairs[(DOT, CSA)]
    assert pair.checked_unchanged
    assert (pair.last_success_at, pair.retrieved_at) == (checked.finished_at, synced(first, 1).retrieved_at)
    assert p.entries[str(second.request_id)].checked_unchanged
    assert not p.entries[str(first.request_id)].checked_unchanged
    p = fold_all(facts([first, synced(first, 1), second, checked, third, synced(third, 21)]))
    assert not p.pairs[(DOT, CSA)].checked_unchanged


def test_a_request_without_outcome_is_requested_and_keeps_the_previous_success() -> None:
    first, second = request(DOT, CSA, 0), request(DOT, CSA, 10)
    p = fold_all(facts([first, synced(first, 1), second]))
    pair = p.pairs[(DOT, CSA)]
    assert pair.state == SyncState.REQUESTED
    assert pair.last_request_id == str(second.request_id)
    assert pair.success_request_id == str(first.request_id)
    assert pair.last_finished_at == synced(first, 1).finished_at


def test_failures_count_up_and_a_success_resets_them() -> None:
    reqs = [request(DOT, CSA, m) for m in (0, 10, 20, 30)]
    events = [reqs[0], failed(reqs[0], 1), reqs[1], failed(reqs[1], 11), reqs[2], failed(reqs[2], 21)]
    p = fold_all(facts(events))
    pair = p.pairs[(DOT, CSA)]
    assert (pair.state, pair.consecutive_failures, pair.failing) == (SyncState.FAILED, 3, True)
    assert p.companies[DOT].failing
    assert p.companies[DOT].failing_sources == "csa"
    assert not p.companies[DOT].success
    p = fold_all(facts([*events, reqs[3], synced(reqs[3], 31)]))
    pair = p.pairs[(DOT, CSA)]
    assert (pair.state, pair.consecutive_failures, pair.failing) == (SyncState.SUCCEEDED, 0, False)
    assert pair.error_message == "upstream answered 503"  # the last error stays on record


def test_late_failure_of_an_older_request_keeps_the_newer_success() -> None:
    old, new = request(DOT, CSA, 0), request(DOT, CSA, 10)
    p = fold_all(facts([old, new, synced(new, 11), failed(old, 12)]))
    pair = p.pairs[(DOT, CSA)]
    assert pair.state == SyncState.SUCCEEDED
    assert pair.consecutive_failures == 0
    assert pair.success_request_id == str(new.request_id)
    assert pair.error_request_id == str(old.request_id)  # recorded, but not current
    assert p.entries[str(old.request_id)].status == SyncState.FAILED
    assert p.totals["all"].failed == 1


def test_late_success_of_an_older_request_does_not_overwrite_the_newer_one() -> None:
    old, new = request(DOT, CSA, 0), request(DOT, CSA, 10)
    p = fold_all(facts([old, new, synced(new, 11, fetched=9), synced(old, 12, fetched=1)]))
    pair = p.pairs[(DOT, CSA)]
    assert (pair.success_request_id, pair.fetched) == (str(new.request_id), 9)
    assert pair.succeeded == 2


def test_late_success_between_failures_counts_only_the_newer_failures() -> None:
    reqs = [request(DOT, CSA, m) for m in (0, 10, 20, 30)]
    events = [*reqs, failed(reqs[0], 1), failed(reqs[2], 21), failed(reqs[3], 31), synced(reqs[1], 40)]
    p = fold_all(facts(events), batch=[2, 3, 1])
    pair = p.pairs[(DOT, CSA)]
    assert pair.consecutive_failures == 2
    assert pair.state == SyncState.FAILED


def test_an_outcome_that_arrives_before_its_request_is_applied_when_the_request_comes() -> None:
    req = request(DOT, CSA, 0)
    early = fold_all(facts([synced(req, 1, fetched=7)]))
    entry = early.entries[str(req.request_id)]
    assert entry.status == SyncState.SUCCEEDED
    assert not entry.has_request
    assert entry.pending_summary
    assert (DOT, CSA) not in early.pairs
    both = fold_all(facts([synced(req, 1, fetched=7), req]))
    assert both.pairs == fold_all(facts([req, synced(req, 1, fetched=7)])).pairs
    assert both.entries[str(req.request_id)].pending_summary is None


def test_a_duplicate_event_changes_nothing() -> None:
    req = request(DOT, CSA, 0)
    once = fold_all(facts([req, failed(req, 1)]))
    again = fold_all(facts([req, failed(req, 1), req, failed(req, 1)]), batch=1)
    assert (again.entries, again.pairs, again.companies, again.totals, again.daily) == (
        once.entries,
        once.pairs,
        once.companies,
        once.totals,
        once.daily,
    )


def test_impossible_content_is_rejected_with_a_reason() -> None:
    req = request(DOT, CSA, 0)
    other_pair = req.model_copy(update={"source": SourceKey.VIOLATIONS})
    other_content = req.model_copy(update={"requested_by": "someone else"})
    late_start = synced(req, 1).model_copy(update={"started_at": synced(req, 5).finished_at})
    batch = facts([req, synced(req, 1), failed(req, 2), synced(other_pair, 3), other_content, late_start])
    folded = fold(Loaded({}, {}, {}), batch)
    assert [(r.index, r.reason) for r in folded.rejected] == [
        (2, CONFLICTING_OUTCOME),
        (3, MISMATCHED_OUTCOME),
        (4, CONFLICTING_REQUEST),
        (5, IMPOSSIBLE_TIMES),
    ]


def test_company_lifecycle_is_last_writer_wins_by_occurred_at() -> None:
    reg, at_reg = registered(DOT, 0, "Acme")
    rem, at_rem = removed(DOT, 5)
    reg2, at_reg2 = registered(DOT, 10, "Acme Two")
    items = [timed(reg, at_reg, "r1"), timed(rem, at_rem, "x1"), timed(reg2, at_reg2, "r2")]
    for order in (items, items[::-1], [items[1], items[2], items[0]]):
        company = fold_all([t.fact for t in order]).companies[DOT]
        assert company.active
        assert company.name == "Acme Two"
        assert company.never_synced
    gone = fold_all([items[0].fact, items[1].fact]).companies[DOT]
    assert not gone.active
    p = fold_all([t.fact for t in items])
    assert p.totals["all"].companies == 1
    assert p.totals["all"].never_synced == 1


def test_sources_fail_independently() -> None:
    csa, vio = request(DOT, CSA, 0), request(DOT, SourceKey.VIOLATIONS, 0)
    not_configured = failed(csa, 1, kind=ErrorKind.NOT_CONFIGURED, retryable=False)
    p = fold_all(facts([csa, vio, not_configured, synced(vio, 2)]))
    assert p.pairs[(DOT, SourceKey.VIOLATIONS)].state == SyncState.SUCCEEDED
    assert p.pairs[(DOT, CSA)].error_kind == "not_configured"
    assert p.companies[DOT].failing_sources == "csa"
    assert p.daily == {
        ("2026-11-23", "csa"): DayCount(failed=1),
        ("2026-11-23", "violations"): DayCount(succeeded=1),
    }


def test_schedule_changes_and_other_facts_change_no_status() -> None:
    projection = MemoryProjection()
    folded = projection.apply(facts([ScheduleChanged(source=CSA, interval_minutes=60)]))
    assert not folded.rejected
    assert not projection.pairs
    assert not projection.companies


def test_a_failed_attempt_shows_on_the_open_request_as_retry_progress() -> None:
    req = request(DOT, CSA, 0)
    p = fold_all(facts([req, attempt_failed(req, 1, attempt=1, first_minute=0.5)]))
    entry = p.entries[str(req.request_id)]
    assert entry.status == SyncState.REQUESTED
    assert (entry.retry_attempt, entry.retry_max_attempts, entry.retry_kind) == (1, 5, "upstream_error")
    assert entry.retry_at == at(1) + timedelta(seconds=30)
    assert entry.started_at == at(0.5) - timedelta(seconds=1)  # the first attempt's start
    assert p.pairs[(DOT, CSA)].state == SyncState.REQUESTED
    assert not p.companies[DOT].failing  # a retry is not yet a failure


def test_the_highest_attempt_wins_whatever_the_order_and_duplicates_change_nothing() -> None:
    req = request(DOT, CSA, 0)
    second, third = attempt_failed(req, 1, attempt=2), attempt_failed(req, 2, attempt=3)
    in_order = fold_all(facts([req, second, third]))
    reversed_with_duplicates = fold_all(facts([req, third, second, third, second]), batch=1)
    assert in_order.entries == reversed_with_duplicates.entries
    assert in_order.entries[str(req.request_id)].retry_attempt == 3


def test_took_runs_from_the_first_attempt_and_the_outcome_keeps_its_own_start() -> None:
    req = request(DOT, CSA, 0)
    outcome = synced(req, 3)  # started 2 s before minute 3: its start is the first attempt's
    for order in ([req, attempt_failed(req, 1), outcome], [req, outcome, attempt_failed(req, 1)]):
        entry = fold_all(facts(order)).entries[str(req.request_id)]
        assert entry.status == SyncState.SUCCEEDED
        assert entry.started_at == outcome.started_at
        assert entry.duration_ms == 2000
        assert entry.retry_attempt == 1  # kept as history; the view shows it only while open


def test_a_failed_attempt_naming_another_pair_is_rejected() -> None:
    req = request(DOT, CSA, 0)
    wrong = attempt_failed(req, 1).model_copy(update={"source": SourceKey.VIOLATIONS})
    folded = fold(Loaded({}, {}, {}), facts([req, wrong]))
    assert [(r.index, r.reason) for r in folded.rejected] == [(1, MISMATCHED_OUTCOME)]
    assert folded.entries[str(req.request_id)].retry_attempt is None
