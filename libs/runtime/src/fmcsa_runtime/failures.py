"""Expected failures as values: what an upstream client returns instead of raising (style.md 2.12).

A `Failure` has one `ErrorKind`, a retryable flag, a short message for people, a scrubbed detail for
engineers and, for rate limits and overload, how long the upstream asked us to wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from fmcsa_events.models import ErrorKind


@dataclass(frozen=True, slots=True)
class Failure:
    kind: ErrorKind
    retryable: bool
    message: str
    detail: str = ""
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind is ErrorKind.NOT_CONFIGURED and self.retryable:
            raise ValueError("not_configured is never retryable")


def parse_retry_after(value: str | None, *, now: datetime, ceiling_s: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), clamped to
    `[0, ceiling_s]`; None when the header is absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), ceiling_s)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - now).total_seconds(), ceiling_s))
