"""The registry: which companies are kept in sync and each source's schedule, folded from the events
`CompanyRegistered`, `CompanyRemoved` and `ScheduleChanged` only. Pure: no I/O, no clock.

Every replica folds the same stream in the same order, so every replica numbers the companies alike:
a company gets the lowest free number when it registers and keeps it until it is removed (its number is
then free for the next registration). The number places it inside each slot (`domain.spread_offset_ms`).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CompanyRegistered, CompanyRemoved, Event, ScheduleChanged
from fmcsa_scheduler.domain import InvalidSchedule, Schedule, validate_schedule


@dataclass(frozen=True, slots=True)
class CompanyAdded:
    dot: str
    index: int


@dataclass(frozen=True, slots=True)
class CompanyDropped:
    dot: str
    index: int


@dataclass(frozen=True, slots=True)
class ScheduleSet:
    source: SourceKey
    schedule: Schedule


@dataclass(frozen=True, slots=True)
class ScheduleRejected:
    source: SourceKey
    reason: str


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The event changed nothing (a repeated registration, the removal of an unknown company...)."""


Change = CompanyAdded | CompanyDropped | ScheduleSet | ScheduleRejected | Unchanged


class Registry:
    """Companies by number and schedules by source; `apply` is the fold.

    Memory per company: its DOT string, one list slot and one dict entry.
    """

    def __init__(
        self, default_interval_minutes: int, per_source: Mapping[SourceKey, int] | None = None
    ) -> None:
        """Every source starts on an interval: its entry in `per_source`, else `default_interval_minutes`."""
        intervals = per_source or {}
        self.schedules: dict[SourceKey, Schedule] = {
            source: Schedule(interval_minutes=intervals.get(source, default_interval_minutes))
            for source in SourceKey
        }
        self.dots: list[str | None] = []  # number -> DOT; None marks a free number
        self._numbers: dict[str, int] = {}
        self._free: list[int] = []  # heap of free numbers, lowest first

    def __len__(self) -> int:
        return len(self._numbers)

    def number_of(self, dot: str) -> int | None:
        return self._numbers.get(dot)

    def occupied(self) -> list[tuple[int, str]]:
        return [(index, dot) for index, dot in enumerate(self.dots) if dot is not None]

    def apply(self, event: Event, *, occurred_ms: int) -> Change:
        """Fold one event; `occurred_ms` (its envelope's time) is when a schedule change takes effect."""
        match event:
            case CompanyRegistered(dot=dot):
                return self._register(dot)
            case CompanyRemoved(dot=dot):
                return self._remove(dot)
            case ScheduleChanged():
                checked = validate_schedule(
                    interval_minutes=event.interval_minutes,
                    cron=event.cron,
                    enabled=event.enabled,
                    since_ms=occurred_ms,
                )
                if isinstance(checked, InvalidSchedule):
                    return ScheduleRejected(event.source, checked.reason)
                if _same_timing(checked, self.schedules[event.source]):
                    return Unchanged()  # re-saving a schedule must not push its companies' next slots back
                self.schedules[event.source] = checked
                return ScheduleSet(event.source, checked)
            case _:
                return Unchanged()

    def _register(self, dot: str) -> Change:
        if dot in self._numbers:
            return Unchanged()
        if self._free:
            index = heapq.heappop(self._free)
            self.dots[index] = dot
        else:
            index = len(self.dots)
            self.dots.append(dot)
        self._numbers[dot] = index
        return CompanyAdded(dot, index)

    def _remove(self, dot: str) -> Change:
        index = self._numbers.pop(dot, None)
        if index is None:
            return Unchanged()
        self.dots[index] = None
        heapq.heappush(self._free, index)
        return CompanyDropped(dot, index)


def _same_timing(a: Schedule, b: Schedule) -> bool:
    return (a.interval_minutes, a.cron, a.enabled) == (b.interval_minutes, b.cron, b.enabled)
