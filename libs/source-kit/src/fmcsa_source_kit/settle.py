"""Pure decision of a source service: what one delivery of a `SyncRequested` ends in.

`settle` never does I/O and takes the time as an argument. It returns either `RetryLater` (nak the
message with a delay: a retryable failure with attempts and time left) or the terminal outcome event
to publish. Rules (ARCHITECTURE.md, "The bus"): `not_configured` is never retried; a retryable failure
is retried until `max_attempts` deliveries are spent or the delay would pass the request's deadline, then it
becomes final and non-retryable; a request already past its deadline is answered `timeout`
without calling the upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import JsonValue

from fmcsa_events.models import Counts, ErrorKind, SourceFailed, SourceSynced, SyncRequested
from fmcsa_source_kit.failures import Failure


@dataclass(frozen=True, slots=True)
class RetryLater:
    delay_s: float
    failure: Failure


@dataclass(frozen=True, slots=True)
class Stored:
    """What a successful fetch did: the store's counts and the facts the outcome reports."""

    counts: Counts
    retrieved_at: datetime | None
    upstream_as_of: datetime | None
    summary: dict[str, JsonValue]
    checked_unchanged: bool = False


DEADLINE_PASSED = Failure(
    ErrorKind.TIMEOUT, retryable=False, message="the request's deadline passed before it could be served"
)


def past_deadline(request: SyncRequested, now: datetime) -> bool:
    return now >= request.deadline


def backoff_s(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Delay before the next delivery when the upstream did not say: exponential, capped.

    Jitter is added by the caller (it needs randomness); this stays deterministic for tests.
    """
    return float(min(cap_s, base_s * (2 ** max(0, attempt - 1))))


def settle(
    request: SyncRequested,
    result: Stored | Failure,
    *,
    attempt: int,
    max_attempts: int,
    started_at: datetime,
    now: datetime,
    retry_base_s: float = 5.0,
    retry_cap_s: float = 600.0,
) -> RetryLater | SourceSynced | SourceFailed:
    """The terminal outcome for this delivery, or `RetryLater`; see the module docstring."""
    base: dict[str, Any] = {
        "request_id": request.request_id,
        "dot": request.dot,
        "source": request.source,
        "attempts": attempt,
        "started_at": started_at,
        "finished_at": now,
    }
    if isinstance(result, Stored):
        return SourceSynced(
            **base,
            counts=result.counts,
            retrieved_at=result.retrieved_at,
            upstream_as_of=result.upstream_as_of,
            summary=result.summary,
            checked_unchanged=result.checked_unchanged,
        )
    if result.retryable and result.kind is not ErrorKind.NOT_CONFIGURED and attempt < max_attempts:
        delay = result.retry_after_s
        if delay is None:
            delay = backoff_s(attempt, base_s=retry_base_s, cap_s=retry_cap_s)
        if now + timedelta(seconds=delay) < request.deadline:
            return RetryLater(delay_s=delay, failure=result)
    final_note = ""
    if result.retryable:
        final_note = f" (gave up after {attempt} attempt{'s' if attempt != 1 else ''})"
    return SourceFailed(
        **base,
        kind=result.kind,
        retryable=False,
        message=(result.message + final_note)[:500],
        detail=result.detail[:2000],
    )
