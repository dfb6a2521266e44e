"""Pure decisions of the scheduler: schedules and their validation, slots, where each (company, source)
is due inside a slot, catch-up, back-off, and what a held in-flight marker means for a slot.

Times are integers of milliseconds since the epoch (UTC) so slot arithmetic is exact; the current time is
always an argument. Nothing here does I/O or reads a clock.

Vocabulary: a *slot* is one run of a source's schedule, named by its start (an interval boundary counted
from the epoch, or a cron fire time) and ending where the next one starts; its length is the *gap*. Each
(company, source) is *due* once per slot, at `slot start + offset`, with `0 <= offset < gap`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no type hints

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.schedules import (
    DEFAULT_INTERVAL_MINUTES,
    cron_problem,
    interval_problem,
)

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- schedules ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """One source's schedule: an interval in minutes or a cron expression (UTC), and an enabled flag.

    `since_ms` is when it took effect: a slot that starts before it is never fired under it.
    """

    interval_minutes: int | None = DEFAULT_INTERVAL_MINUTES
    cron: str | None = None
    enabled: bool = True
    since_ms: int = 0

    def timing(self) -> Timing:
        if self.cron is not None:
            return cron_timing(self.cron)
        assert self.interval_minutes is not None
        return IntervalTiming(self.interval_minutes)


@dataclass(frozen=True, slots=True)
class InvalidSchedule:
    reason: str


def validate_schedule(
    *, interval_minutes: int | None, cron: str | None, enabled: bool, since_ms: int
) -> Schedule | InvalidSchedule:
    """A `Schedule` if exactly one of the interval (5 to 1440 minutes) and the cron expression is given
    and valid; else the reason why not.

    A cron expression has the five standard fields (or an alias such as `@hourly`), must fire at least
    once, and two fire times on one day are never less than 5 minutes apart.
    """
    if (interval_minutes is None) == (cron is None):
        return InvalidSchedule("give exactly one of interval_minutes and cron")
    if interval_minutes is not None:
        if (problem := interval_problem(interval_minutes)) is not None:
            return InvalidSchedule(problem)
        return Schedule(interval_minutes=interval_minutes, enabled=enabled, since_ms=since_ms)
    assert cron is not None
    reason = cron_problem(cron, at_s=since_ms / 1000)
    if reason is not None:
        return InvalidSchedule(reason)
    return Schedule(interval_minutes=None, cron=cron.strip(), enabled=enabled, since_ms=since_ms)


class Timing(Protocol):
    def slot_at(self, t_ms: int) -> tuple[int, int]:
        """The slot that contains `t_ms`: `(start, end)` with `start <= t_ms < end`."""
        ...


@dataclass(frozen=True, slots=True)
class IntervalTiming:
    """Slots every `minutes`, counted from the epoch, so every replica and restart agrees on them."""

    minutes: int

    def slot_at(self, t_ms: int) -> tuple[int, int]:
        length = self.minutes * MINUTE_MS
        start = t_ms - t_ms % length
        return start, start + length


class CronTiming:
    """Slots at a cron expression's fire times (UTC). Recent slots are cached: every (company, source)
    of a source asks for the same few slots.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._slots: OrderedDict[int, int] = OrderedDict()  # start -> end, most recent last

    def slot_at(self, t_ms: int) -> tuple[int, int]:
        for start, end in reversed(self._slots.items()):
            if start <= t_ms < end:
                return start, end
        end = int(croniter(self.expression, t_ms / 1000).get_next(float) * 1000)
        start = int(croniter(self.expression, end / 1000).get_prev(float) * 1000)
        self._slots[start] = end
        if len(self._slots) > 16:
            self._slots.popitem(last=False)
        return start, end


@lru_cache(maxsize=64)
def cron_timing(expression: str) -> CronTiming:
    return CronTiming(expression)


# --- spread ------------------------------------------------------------------------------------------


def spread_offset_ms(index: int, source: SourceKey, gap_ms: int) -> int:
    """Where in a slot of length `gap_ms` company number `index` is due for `source`.

    Companies are numbered densely in registration order (the registry's fold, the same on every replica
    and after every restart). Number `i` is due in minute `i mod m` of an `m`-minute slot, so with `N`
    companies every minute gets `floor(N/m)` or `ceil(N/m)` requests of a source: the flattest possible.
    The sources are rotated by a third of the slot, so their extra requests land in different minutes.
    Inside its minute a company sits at `van_der_corput(i // m)` of the minute, spreading each minute's
    requests over its seconds. A random hash cannot do this: with a few requests per minute its counts
    vary by a factor of 2 or more between minutes.
    """
    minutes = max(1, gap_ms // MINUTE_MS)
    rotation = _SOURCE_RANK[source] * minutes // len(_SOURCE_RANK)
    minute = (index + rotation) % minutes
    within = int(van_der_corput(index // minutes) * MINUTE_MS)
    return min(minute * MINUTE_MS + within, gap_ms - 1)


_SOURCE_RANK = {source: rank for rank, source in enumerate(SourceKey)}


@lru_cache(maxsize=1 << 16)  # rows repeat for every minute of every slot: look them up, do not recompute
def van_der_corput(n: int) -> float:
    """The n-th point of the base-2 van der Corput sequence in [0, 1): 0, 1/2, 1/4, 3/4, 1/8..."""
    result, denominator = 0.0, 1.0
    while n:
        n, bit = divmod(n, 2)
        denominator *= 2
        result += bit / denominator
    return result


# --- due times ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """One due time of one (company, source): when, and the slot it belongs to."""

    due_ms: int
    slot_ms: int


def due_in_slot(index: int, source: SourceKey, slot: tuple[int, int]) -> Due:
    start, end = slot
    return Due(start + spread_offset_ms(index, source, end - start), start)


def next_due(timing: Timing, index: int, source: SourceKey, after_ms: int) -> Due:
    """The first due time strictly after `after_ms`."""
    slot = timing.slot_at(after_ms)
    due = due_in_slot(index, source, slot)
    if due.due_ms > after_ms:
        return due
    return due_in_slot(index, source, timing.slot_at(slot[1]))


def latest_due(timing: Timing, index: int, source: SourceKey, at_ms: int) -> Due:
    """The last due time at or before `at_ms`."""
    slot = timing.slot_at(at_ms)
    due = due_in_slot(index, source, slot)
    if due.due_ms <= at_ms:
        return due
    return due_in_slot(index, source, timing.slot_at(slot[0] - 1))


def slot_of(timing: Timing, due_ms: int) -> int:
    """The slot a due time belongs to: the latest slot start at or before it (offsets stay inside a slot)."""
    return timing.slot_at(due_ms)[0]


def first_due(
    schedule: Schedule, index: int, source: SourceKey, *, now_ms: int, checkpoint_ms: int | None
) -> Due:
    """The first due time a freshly built timetable holds for one (company, source).

    Catch-up: if the latest due time at or before now lies after the checkpoint (the moment through which
    some scheduler had handled every due time), that slot was missed while nothing ran, and it is
    returned (it is due at once). Only the latest missed slot is ever returned, never the older ones.
    Otherwise, or without a checkpoint (a first start), the next due time after now. A slot that starts
    before the schedule took effect (`since_ms`) is never returned, so a changed schedule cannot fire a
    slot its predecessor already fired.
    """
    timing = schedule.timing()
    if checkpoint_ms is not None:
        latest = latest_due(timing, index, source, now_ms)
        if latest.due_ms > checkpoint_ms and latest.slot_ms >= schedule.since_ms:
            return latest
    due = next_due(timing, index, source, now_ms)
    if due.slot_ms >= schedule.since_ms:
        return due
    start, end = timing.slot_at(schedule.since_ms)  # the first slot that starts at or after `since_ms`
    if start < schedule.since_ms:
        start, end = end, timing.slot_at(end)[1]
    return due_in_slot(index, source, (start, end))


# --- requests ----------------------------------------------------------------------------------------

_REQUEST_NAMESPACE = uuid5(NAMESPACE_URL, "https://fmcsa-sync/scheduler/slot")


def slot_request_id(source: SourceKey, dot: str, slot_ms: int) -> UUID:
    """The request id of a scheduled slot: the same on every replica and after every restart, so the
    stream's de-duplication and the status fold see one request per slot.
    """
    return uuid5(_REQUEST_NAMESPACE, f"{source}:{dot}:{slot_ms}")


def is_catch_up(due_ms: int, *, started_ms: int, superseded: int) -> bool:
    """A request is a catch-up when its slot came due before this scheduler started (it was missed while
    nothing ran) or when it replaced older slots that were missed while the loop stalled.
    """
    return due_ms < started_ms or superseded > 0


class SkipReason(StrEnum):
    """Why a due slot was not requested; counted per reason."""

    IN_FLIGHT = "in_flight"  # another request for the (company, source) is open
    BACKOFF = "backoff"  # the (company, source) is backing off after non-retryable failures
    ALREADY_REQUESTED = "already_requested"  # this very slot was requested before (a replica, a restart)
    MISSED = "missed"  # an older slot the loop did not reach in time; only the latest one is requested
    DISABLED = "disabled"  # the scheduler is switched off (settings)


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish the request. `fresh`: this scheduler created the marker just now, so if the stream calls the
    publish a duplicate (the slot was requested and answered already) the marker must be released.
    """

    fresh: bool


@dataclass(frozen=True, slots=True)
class Skip:
    reason: SkipReason


def after_marker_held(
    *, held_request_id: UUID, held_taken_ms: int, request_id: UUID, now_ms: int, republish_window_ms: int
) -> Publish | Skip:
    """What to do when the in-flight marker of a due (company, source) is held by a live request.

    The same slot's request, taken less than the republish window ago: publish it again. If the earlier
    publish reached the stream, the stream drops this one as a duplicate (same event id inside its
    duplicate window); if the scheduler died between marker and publish, this publish is the one.
    The same slot's request taken longer ago was published: skip. Any other request: skip, in flight.
    """
    if held_request_id == request_id:
        if now_ms - held_taken_ms < republish_window_ms:
            return Publish(fresh=False)
        return Skip(SkipReason.ALREADY_REQUESTED)
    return Skip(SkipReason.IN_FLIGHT)


# --- back-off ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backoff:
    """A (company, source) that failed `failures` times in a row with a non-retryable kind: no scheduled
    request before `until_ms`. `seq` is the stream sequence of the last outcome applied, so applying the
    same outcome again (a replay after a restart) changes nothing.
    """

    failures: int
    until_ms: int
    seq: int
    kind: str = ""


def backoff_delay_ms(failures: int, gap_ms: int, max_ms: int) -> int:
    """The wait, from the failure, after `failures` consecutive non-retryable failures: `2**failures - 1`
    slot lengths, never more than `max_ms`. A failure arrives some time after its slot came due, so the
    next request goes out `2**failures` slots after the failed one: the interval doubles per failure.
    """
    return min(gap_ms * ((1 << min(failures, 32)) - 1), max_ms)


def backoff_after_failure(
    previous: Backoff | None, *, kind: str, failed_at_ms: int, gap_ms: int, max_ms: int, seq: int
) -> Backoff:
    failures = (previous.failures if previous is not None else 0) + 1
    return Backoff(failures, failed_at_ms + backoff_delay_ms(failures, gap_ms, max_ms), seq, kind)


def in_backoff(backoff: Backoff | None, now_ms: int) -> bool:
    return backoff is not None and now_ms < backoff.until_ms
