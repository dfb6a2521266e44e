"""The timetable: per source, a heap of next-due times, one live item per registered company. Pure: no
I/O, no clock (the time is passed in).

A tick pops only what is due, so its work grows with the number of due (company, source) pairs, never
with the number of companies. A removed company's item is dropped when it surfaces; a schedule change
rebuilds that source's heap and leaves the others alone.

**Waiting for capacity**: a due entry the in-flight cap keeps back is `hold`-ed in a second heap per
source, ordered by staleness (`capacity.staleness_order`: the oldest last successful sync first, never
synced before all), and `take_waiting` hands out the stalest. A held entry keeps its due time; when it
is taken after its slot ended, it is for the latest slot (as a late `pop_due`). A schedule change drops
the waiting entries with the rest of the source's heap (the new schedule makes every company due anew).

Memory: an item is one Python int packing `due_ms` and the company number (about 40 bytes with its
list slot), plus one byte per company number and source marking whether its live item is in the heap;
no object per (company, source). 100,000 companies x 3 sources take about 15 MB.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable
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


_SCHEDULED = 1  # armed[i]: the due heap holds company i's live item
_WAITING = 2  # armed[i]: company i is due and waits for capacity in the waiting heap


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
    __slots__ = ("armed", "generation", "heap", "waiting", "waiting_count", "waiting_due")

    def __init__(self) -> None:
        self.heap: list[int] = []
        self.armed = bytearray()  # armed[i]: _SCHEDULED, _WAITING, or 0 (taken out by a tick)
        self.generation = 0
        self.waiting: list[int] = []  # heap of _pack(last synced ms, index)
        self.waiting_due = array("q")  # waiting_due[i]: the due time company i waits with
        self.waiting_count = 0

    def arm(self, index: int, value: int) -> None:
        if index >= len(self.armed):
            self.armed.extend(bytes(index + 1 - len(self.armed) + 1024))
        self.armed[index] = value

    def is_armed(self, index: int) -> bool:
        return index < len(self.armed) and self.armed[index] != 0

    def clear_waiting(self) -> None:
        self.waiting, self.waiting_due, self.waiting_count = [], array("q"), 0


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
        table.clear_waiting()
        schedule = self._registry.schedules[source]
        if not schedule.enabled:
            table.heap = []
            return
        items = []
        for index, _dot in self._registry.occupied():
            due = first_due(schedule, index, source, now_ms=now_ms, checkpoint_ms=checkpoint_ms)
            items.append(_pack(due.due_ms, index))
            table.armed[index] = _SCHEDULED
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
                table.arm(index, _SCHEDULED)

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
            entry = self._entry(source, table, index, due_ms, now_ms)
            if entry is not None:
                taken.append(entry)
        return taken

    def _entry(
        self, source: SourceKey, table: _SourceTable, index: int, due_ms: int, now_ms: int
    ) -> DueEntry | None:
        dot = self._registry.dots[index] if index < len(self._registry.dots) else None
        if dot is None:
            return None  # the company was removed; its number is free
        timing = self._registry.schedules[source].timing()
        latest = latest_due(timing, index, source, now_ms)
        superseded = latest.due_ms > due_ms
        slot_ms = latest.slot_ms if superseded else slot_of(timing, due_ms)
        due_ms = max(due_ms, latest.due_ms)
        return DueEntry(source, dot, index, due_ms, slot_ms, superseded, table.generation)

    def hold(self, entry: DueEntry, last_synced_ms: int) -> None:
        """Keep a due entry back for want of capacity: it waits, ordered by `last_synced_ms` (older
        first), until `take_waiting` hands it out. An entry whose schedule changed or whose company
        went is dropped (as `reschedule` would).
        """
        table = self._tables[entry.source]
        if not self._still_current(entry, table):
            return
        table.arm(entry.index, _WAITING)
        if entry.index >= len(table.waiting_due):
            table.waiting_due.extend([0] * (entry.index + 1 - len(table.waiting_due) + 1024))
        table.waiting_due[entry.index] = entry.due_ms
        heapq.heappush(table.waiting, _pack(last_synced_ms, entry.index))
        table.waiting_count += 1

    def take_waiting(
        self, source: SourceKey, limit: int, now_ms: int, last_synced: Callable[[int], int]
    ) -> list[DueEntry]:
        """Up to `limit` waiting entries of `source`, the stalest first by `last_synced(index)` (read
        now: a company synced while it waited moves back). Each must be handed back like `pop_due`'s.
        """
        table = self._tables[source]
        taken: list[DueEntry] = []
        while len(taken) < limit and table.waiting:
            key, index = _unpack(table.waiting[0])
            if index >= len(table.armed) or table.armed[index] != _WAITING:
                heapq.heappop(table.waiting)  # left over from before a rebuild: not waiting any more
                continue
            current = last_synced(index)
            if current != key:
                heapq.heapreplace(table.waiting, _pack(current, index))
                continue
            heapq.heappop(table.waiting)
            table.armed[index] = 0
            table.waiting_count -= 1
            self.popped += 1
            entry = self._entry(source, table, index, table.waiting_due[index], now_ms)
            if entry is not None:
                taken.append(entry)
        return taken

    def waiting(self, source: SourceKey) -> int:
        """Entries of `source` waiting for capacity (a removed company's until it surfaces)."""
        return self._tables[source].waiting_count

    def reschedule(self, entry: DueEntry, *, now_ms: int) -> None:
        """Push the entry's next due time after now, unless its schedule changed or its company went."""
        table = self._tables[entry.source]
        if not self._still_current(entry, table):
            return
        timing = self._registry.schedules[entry.source].timing()
        due = next_due(timing, entry.index, entry.source, max(now_ms, entry.due_ms))
        heapq.heappush(table.heap, _pack(due.due_ms, entry.index))
        table.arm(entry.index, _SCHEDULED)

    def retry(self, entry: DueEntry) -> None:
        """Put the entry back unchanged (it is due again at once): its request could not be sent."""
        table = self._tables[entry.source]
        if self._still_current(entry, table):
            heapq.heappush(table.heap, _pack(entry.due_ms, entry.index))
            table.arm(entry.index, _SCHEDULED)

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
