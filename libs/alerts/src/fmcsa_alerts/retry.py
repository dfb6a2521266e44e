"""What one webhook attempt ends in, and when the next one is due: pure, with randomness passed in.

- 2xx: delivered.
- 5xx, 429, 408, a timeout or a refused/reset connection: retried on the schedule (about 1 min, 5 min,
  30 min, 2 h, 12 h by default, from settings), each delay spread by +-`jitter` so a burst of failures
  does not come back as a burst; a `Retry-After` longer than the step is honoured (capped at the
  schedule's longest step). After the last step the delivery has failed.
- any other status (3xx, 4xx but 408 and 429): failed at once; the receiver refused it, and sending
  the same body again would be refused again.
- an address refused by the SSRF check, or a secret that does not open: failed at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PERMANENT_ERRORS = ("refused_address", "secret_unavailable")
"""Errors no retry can cure: the address check refused the URL, or the secret does not open."""

DEFAULT_SCHEDULE_S: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0, 43200.0)


@dataclass(frozen=True, slots=True)
class Delivered:
    status: int


@dataclass(frozen=True, slots=True)
class RetryLater:
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class GaveUp:
    reason: str
    retryable: bool
    """True when attempts ran out on a retryable failure (the destination is then failing)."""


Settled = Delivered | RetryLater | GaveUp


def retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def settle_attempt(
    *,
    attempt: int,
    status: int | None,
    error: str | None,
    retry_after_s: float | None,
    schedule: Sequence[float],
    jitter: float,
    unit: float,
) -> Settled:
    """The end of attempt number `attempt` (1-based): `status` is the answer's code, or None with
    `error` naming why there was none (`timeout`, `connect`, `refused_address: ...`). `unit` is a
    random number in [0, 1) for the jitter.
    """
    if status is not None and 200 <= status < 300:
        return Delivered(status)
    if status is not None:
        reason = f"HTTP {status}"
        retryable = retryable_status(status)
    else:
        reason = error or "no answer"
        retryable = not reason.startswith(PERMANENT_ERRORS)
    if not retryable:
        return GaveUp(reason, retryable=False)
    if attempt > len(schedule):
        return GaveUp(f"{reason} (gave up after {attempt} attempts)", retryable=True)
    delay = schedule[attempt - 1] * (1 + jitter * (2 * unit - 1))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max(schedule)))
    return RetryLater(max(0.0, delay), reason)
