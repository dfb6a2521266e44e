"""The timetable: per source, a heap of next-due times, one live item per registered company. Pure: no
I/O, no clock (the time is passed in).

A tick pops only what is due, so its work grows with the number of due (company, source) pairs, never
with the number of companies. A removed company's item is dropped when it surfaces; a schedule change
rebuilds that source's heap and leaves the others alone.

Memory: an item is one Python int packing `due_ms` and the company number (about 40 bytes with its
list slot), plus one byte per company number and source marking whether its live item is in the heap;
no object per (company, source). 100,000 companies x 3 sources take about 15 MB.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from fmcsa_events.identifiers import SourceKey
from fmcsa_scheduler.domain import first_due, latest_due, next_due, slot_of
from fmcsa_scheduler.registry import Registry

_NUMBER_BITS = 27  # up to 134 million company numbers; the FMCSA registry holds about 4 million DOTs
_NUMBER_MASK = (1 << _NUMBER_BITS) - 1


def _pack(due_ms: int, index: int) -> int:
    # one int orders like (due_ms, index) and costs a third of a tuple of two
    return (due_ms << _NUMBER_BITS) | index


def _unpack(item: int) -> tuple[int, int]:
    return item >> _NUMBER_BITS, item & _NUMBER_MASK


@dataclass(frozen=True, slots=True)
class DueEntry:
    """One (company, source) due now: the slot to request and how late it is."""

    source: SourceKey
    dot: str
    index: int
    due_ms: int
    slot_ms: int
    superseded: bool  # older slots were missed because the loop reached this one late
    generation: int


class _SourceTable:
    __slots__ = ("armed", "generation", "heap")

    def __init__(self) -> None:
        self.heap: list[int] = []
        self.armed = bytearray()  # armed[i] == 1: the heap holds company i's live item
        self.generation = 0

    def arm(self, index: int, value: int) -> None:
        if index >= len(self.armed):
            self.armed.extend(bytes(index + 1 - len(self.armed) + 1024))
        self.armed[index] = value

    def is_armed(self, index: int) -> bool:
        return index < len(self.armed) and self.armed[index] == 1


class Timetable:
    """Next-due times of every (company, source) of a `Registry`."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._tables = {source: _SourceTable() for source in SourceKey}
        self.popped = 0  # heap pops so far (valid and stale): what a tick's work is made of

    def rebuild(self, source: SourceKey, *, now_ms: int, checkpoint_ms: int | None) -> None:
        """Recompute every company's first due time for `source` (see `domain.first_due`); O(companies)."""
        table = self._tables[source]
        table.generation += 1
        table.armed = bytearray(len(self._registry.dots) + 1024)
        schedule = self._registry.schedules[source]
        if not schedule.enabled:
            table.heap = []
            return
        items = []
        for index, _dot in self._registry.occupied():
            due = first_due(schedule, index, source, now_ms=now_ms, checkpoint_ms=checkpoint_ms)
            items.append(_pack(due.due_ms, index))
            table.armed[index] = 1
        heapq.heapify(items)
        table.heap = items

    def rebuild_all(self, *, now_ms: int, checkpoint_ms: int | None) -> None:
        for source in SourceKey:
            self.rebuild(source, now_ms=now_ms, checkpoint_ms=checkpoint_ms)

    def add(self, index: int, *, now_ms: int) -> None:
        """Schedule a newly registered company: its first due time after now, in every enabled source.

        A number freed by a removal may still have its old item in the heap; that item then serves the
        new company (the due time belongs to the number, not the DOT), so nothing is pushed twice.
        """
        for source, table in self._tables.items():
            schedule = self._registry.schedules[source]
            if schedule.enabled and not table.is_armed(index):
                due = first_due(schedule, index, source, now_ms=now_ms, checkpoint_ms=None)
                heapq.heappush(table.heap, _pack(due.due_ms, index))
                table.arm(index, 1)

    def pop_due(self, now_ms: int, limit: int) -> list[DueEntry]:
        """Take up to `limit` entries due at or before now, earliest first across sources.

        Each taken entry must be handed back with `reschedule` or `retry`. When the loop comes so late
        that a later slot of the same company is already due, the entry is for the latest slot only.
        """
        taken: list[DueEntry] = []
        while len(taken) < limit:
            source = self._earliest_source(now_ms)
            if source is None:
                break
            table = self._tables[source]
            due_ms, index = _unpack(heapq.heappop(table.heap))
            self.popped += 1
            table.armed[index] = 0
            dot = self._registry.dots[index] if index < len(self._registry.dots) else None
            if dot is None:
                continue  # the company was removed; its number is free
            timing = self._registry.schedules[source].timing()
            latest = latest_due(timing, index, source, now_ms)
            superseded = latest.due_ms > due_ms
            slot_ms = latest.slot_ms if superseded else slot_of(timing, due_ms)
            due_ms = max(due_ms, latest.due_ms)
            taken.append(DueEntry(source, dot, index, due_ms, slot_ms, superseded, table.generation))
        return taken

    def reschedule(self, entry: DueEntry, *, now_ms: int) -> None:
        """Push the entry's next due time after now, unless its schedule changed or its company went."""
        table = self._tables[entry.source]
        if not self._still_current(entry, table):
            return
        timing = self._registry.schedules[entry.source].timing()
        due = next_due(timing, entry.index, entry.source, max(now_ms, entry.due_ms))
        heapq.heappush(table.heap, _pack(due.due_ms, entry.index))
        table.arm(entry.index, 1)

    def retry(self, entry: DueEntry) -> None:
        """Put the entry back unchanged (it is due again at once): its request could not be sent."""
        table = self._tables[entry.source]
        if self._still_current(entry, table):
            heapq.heappush(table.heap, _pack(entry.due_ms, entry.index))
            table.arm(entry.index, 1)

    def next_due_ms(self, source: SourceKey) -> int | None:
        heap = self._tables[source].heap
        return _unpack(heap[0])[0] if heap else None

    def earliest_due_ms(self) -> int | None:
        dues = [due for source in SourceKey if (due := self.next_due_ms(source)) is not None]
        return min(dues, default=None)

    def scheduled(self, source: SourceKey) -> int:
        """Items in the source's heap (removed companies' items included until they surface)."""
        return len(self._tables[source].heap)

    def _earliest_source(self, now_ms: int) -> SourceKey | None:
        best: SourceKey | None = None
        best_item = 0
        for source, table in self._tables.items():
            if (
                table.heap
                and _unpack(table.heap[0])[0] <= now_ms
                and (best is None or table.heap[0] < best_item)
            ):
                best, best_item = source, table.heap[0]
        return best

    def _still_current(self, entry: DueEntry, table: _SourceTable) -> bool:
        return (
            entry.generation == table.generation
            and entry.index < len(self._registry.dots)
            and self._registry.dots[entry.index] == entry.dot
            and not table.is_armed(entry.index)
        )
