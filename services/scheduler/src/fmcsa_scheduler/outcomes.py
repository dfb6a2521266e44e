"""What the scheduler learns from requests and their outcomes: which requests are open (for the status),
which markers to release, and which (company, source) pairs back off. Pure: no I/O, no clock.

Back-off rule: a `SourceFailed` that is not retryable adds one to the pair's consecutive failures and
holds its scheduled requests back for `2**failures - 1` slot lengths from the failure, capped at the
configured maximum (a day by default): the effective interval doubles per failure. A `SourceSynced`
or a manual `SyncRequested` ends the back-off. A retryable failure that was final (attempts spent)
neither starts nor ends one.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import SourceFailed, SourceSynced, SyncRequested, Trigger
from fmcsa_scheduler.domain import Backoff, backoff_after_failure, to_ms

Pair = tuple[SourceKey, str]


@dataclass(frozen=True, slots=True)
class BackoffSet:
    pair: Pair
    backoff: Backoff


@dataclass(frozen=True, slots=True)
class BackoffCleared:
    pair: Pair


BackoffChange = BackoffSet | BackoffCleared


class Outcomes:
    """Open requests (by pair: request id and deadline) and back-offs (by pair)."""

    def __init__(self, backoffs: dict[Pair, Backoff] | None = None) -> None:
        self.backoffs: dict[Pair, Backoff] = dict(backoffs or {})
        self.open: dict[Pair, tuple[UUID, int]] = {}

    def requested(self, event: SyncRequested, *, seq: int) -> BackoffChange | None:
        pair = (event.source, event.dot)
        self.open[pair] = (event.request_id, to_ms(event.deadline))
        if event.trigger is Trigger.MANUAL:
            return self._clear(pair, seq)
        return None

    def sent(self, request: SyncRequested) -> None:
        """Count a request as open at once: this replica is about to publish it for the first time.

        Its marker was just taken; counted before the fold reads it back, a tick never sees room it has
        just used. Never for a republish: the fold may have applied its outcome already.
        """
        self.open[(request.source, request.dot)] = (request.request_id, to_ms(request.deadline))

    def unsent(self, request: SyncRequested) -> None:
        """A request `sent` whose publish failed or that the stream already held: not open after all."""
        pair = (request.source, request.dot)
        if self.open.get(pair, (None, 0))[0] == request.request_id:
            del self.open[pair]

    def answered(
        self, event: SourceSynced | SourceFailed, *, seq: int, gap_ms: int, max_backoff_ms: int
    ) -> BackoffChange | None:
        """Fold one outcome. Applying an outcome a second time (same or older `seq`) changes nothing."""
        pair = (event.source, event.dot)
        if self.open.get(pair, (None, 0))[0] == event.request_id:
            del self.open[pair]
        previous = self.backoffs.get(pair)
        if previous is not None and seq <= previous.seq:
            return None
        if isinstance(event, SourceSynced):
            return self._clear(pair, seq)
        if event.retryable:
            return None
        backoff = backoff_after_failure(
            previous,
            kind=event.kind,
            failed_at_ms=to_ms(event.finished_at),
            gap_ms=gap_ms,
            max_ms=max_backoff_ms,
            seq=seq,
        )
        self.backoffs[pair] = backoff
        return BackoffSet(pair, backoff)

    def expire(self, now_ms: int) -> None:
        """Forget open requests whose deadline has passed (their source answers them as `timeout`)."""
        for pair in [pair for pair, (_, deadline) in self.open.items() if deadline <= now_ms]:
            del self.open[pair]

    def open_by_source(self) -> dict[SourceKey, int]:
        counts = dict.fromkeys(SourceKey, 0)
        for source, _dot in self.open:
            counts[source] += 1
        return counts

    def backing_off(self, now_ms: int) -> dict[SourceKey, int]:
        counts = dict.fromkeys(SourceKey, 0)
        for (source, _dot), backoff in self.backoffs.items():
            if backoff.until_ms > now_ms:
                counts[source] += 1
        return counts

    def _clear(self, pair: Pair, seq: int) -> BackoffChange | None:
        previous = self.backoffs.get(pair)
        if previous is None or seq <= previous.seq:
            return None
        del self.backoffs[pair]
        return BackoffCleared(pair)
