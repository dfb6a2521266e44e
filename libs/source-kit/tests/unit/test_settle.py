from datetime import UTC, datetime, timedelta
from uuid import uuid4

from fmcsa_events.models import Counts, ErrorKind, SourceFailed, SourceSynced, SyncRequested, Trigger
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.settle import DEADLINE_PASSED, RetryLater, Stored, backoff_s, past_deadline, settle

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def request(deadline_min: int = 30) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(),
        dot="2847193",
        source="csa",
        trigger=Trigger.MANUAL,
        requested_by="ops",
        requested_at=NOW,
        deadline=NOW + timedelta(minutes=deadline_min),
    )


def test_a_stored_fetch_settles_as_synced_with_its_counts() -> None:
    stored = Stored(Counts(fetched=5, inserted=5), NOW, None, {"basics": 5})
    outcome = settle(
        request(), stored, attempt=2, max_attempts=5, started_at=NOW, now=NOW + timedelta(seconds=1)
    )
    assert isinstance(outcome, SourceSynced)
    assert outcome.counts.inserted == 5
    assert outcome.attempts == 2
    assert outcome.summary == {"basics": 5}
    assert not outcome.checked_unchanged


def test_a_freshness_check_settles_as_synced_checked_unchanged_with_the_held_times() -> None:
    held_at = NOW - timedelta(days=3)
    stored = Stored(Counts(), held_at, held_at - timedelta(days=1), {"total": 7}, checked_unchanged=True)
    outcome = settle(request(), stored, attempt=1, max_attempts=5, started_at=NOW, now=NOW)
    assert isinstance(outcome, SourceSynced)
    assert outcome.checked_unchanged
    assert (outcome.retrieved_at, outcome.counts.fetched, outcome.summary) == (held_at, 0, {"total": 7})


def test_retryable_failure_goes_back_with_the_upstreams_delay() -> None:
    failure = Failure(ErrorKind.RATE_LIMITED, retryable=True, message="429", retry_after_s=42.0)
    decision = settle(request(), failure, attempt=1, max_attempts=5, started_at=NOW, now=NOW)
    assert decision == RetryLater(42.0, failure)


def test_retryable_failure_without_delay_backs_off_exponentially() -> None:
    failure = Failure(ErrorKind.UPSTREAM_ERROR, retryable=True, message="503")
    delays = [
        settle(
            request(),
            failure,
            attempt=a,
            max_attempts=9,
            started_at=NOW,
            now=NOW,
            retry_base_s=5,
            retry_cap_s=60,
        )
        for a in (1, 2, 3, 5)
    ]
    assert [d.delay_s for d in delays if isinstance(d, RetryLater)] == [5.0, 10.0, 20.0, 60.0]
    assert backoff_s(10, base_s=1, cap_s=30) == 30


def test_spent_attempts_make_a_final_non_retryable_failure() -> None:
    failure = Failure(
        ErrorKind.TIMEOUT, retryable=True, message="upstream did not answer", detail="read timeout"
    )
    outcome = settle(request(), failure, attempt=5, max_attempts=5, started_at=NOW, now=NOW)
    assert isinstance(outcome, SourceFailed)
    assert outcome.kind is ErrorKind.TIMEOUT
    assert outcome.retryable is False
    assert "gave up after 5 attempts" in outcome.message
    assert outcome.detail == "read timeout"


def test_a_retry_that_would_pass_the_deadline_is_final_now() -> None:
    failure = Failure(ErrorKind.RATE_LIMITED, retryable=True, message="429", retry_after_s=3600)
    outcome = settle(request(deadline_min=30), failure, attempt=1, max_attempts=5, started_at=NOW, now=NOW)
    assert isinstance(outcome, SourceFailed)
    assert outcome.kind is ErrorKind.RATE_LIMITED


def test_not_configured_and_not_found_are_never_retried() -> None:
    for failure in (
        Failure(ErrorKind.NOT_CONFIGURED, retryable=False, message="no key"),
        Failure(ErrorKind.NOT_FOUND, retryable=False, message="unknown"),
    ):
        outcome = settle(request(), failure, attempt=1, max_attempts=5, started_at=NOW, now=NOW)
        assert isinstance(outcome, SourceFailed)
        assert outcome.kind is failure.kind
        assert outcome.attempts == 1


def test_deadline() -> None:
    r = request(deadline_min=1)
    assert not past_deadline(r, NOW)
    assert past_deadline(r, NOW + timedelta(minutes=1))
    outcome = settle(r, DEADLINE_PASSED, attempt=3, max_attempts=5, started_at=NOW, now=NOW)
    assert isinstance(outcome, SourceFailed)
    assert outcome.kind is ErrorKind.TIMEOUT
