"""Expected failures as values: what an upstream client returns instead of raising (style.md 2.12).

A `Failure` has one `ErrorKind`, a retryable flag, a short message for people, a scrubbed detail for
engineers and, for rate limits and overload, how long the upstream asked us to wait.
"""

from __future__ import annotations

from dataclasses import dataclass

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
