"""When each (company, source) was last synced successfully: the order in which companies waiting for
capacity are served (the stalest first, never synced before all). Pure: no I/O, no clock.

Filled from two places: at start, the last `SourceSynced` of every (source, DOT) still in the stream
(`fmcsa_scheduler.last_synced`, one read with deliver-last-per-subject), then every `SourceSynced` the
activity fold applies. Until the registry is folded the times are kept by DOT (`pending`); `bind` moves
them into one array per source indexed by company number (8 bytes a company), as the timetable is.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping

from fmcsa_events.identifiers import SourceKey
from fmcsa_scheduler.capacity import NEVER_SYNCED
from fmcsa_scheduler.registry import Registry


class Staleness:
    """Last successful sync (epoch ms, `NEVER_SYNCED` if unknown) per source and company number."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._last: dict[SourceKey, array[int]] = {s: array("q") for s in SourceKey}
        self._pending: dict[tuple[SourceKey, str], int] | None = {}

    def seed(self, found: Mapping[tuple[SourceKey, str], int]) -> None:
        """Last syncs read at start (by source and DOT); a later one already known wins."""
        for pair, ms in found.items():
            self._set_dot(pair[0], pair[1], ms)

    def bind(self) -> None:
        """The registry is folded: move the times kept by DOT to the company numbers."""
        pending, self._pending = self._pending or {}, None
        for (source, dot), ms in pending.items():
            self._set_dot(source, dot, ms)

    def synced(self, source: SourceKey, dot: str, finished_ms: int) -> None:
        self._set_dot(source, dot, finished_ms)

    def forget(self, index: int) -> None:
        """A company number given to a new registration: it has never been synced."""
        for last in self._last.values():
            if index < len(last):
                last[index] = NEVER_SYNCED

    def of(self, source: SourceKey, index: int) -> int:
        last = self._last[source]
        return last[index] if index < len(last) else NEVER_SYNCED

    def _set_dot(self, source: SourceKey, dot: str, ms: int) -> None:
        if self._pending is not None:
            pair = (source, dot)
            self._pending[pair] = max(ms, self._pending.get(pair, NEVER_SYNCED))
            return
        index = self._registry.number_of(dot)
        if index is None:
            return  # not (or no longer) registered
        last = self._last[source]
        if index >= len(last):
            last.extend([NEVER_SYNCED] * (index + 1 - len(last) + 1024))
        last[index] = max(last[index], ms)
