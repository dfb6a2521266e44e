"""The whole projection in memory, folded with the same `fold` and `settle` as the store.

It is the reference the tests compare the database with, and it shows the fold's contract in one
place: load what a batch touches, fold, count what the fold asks to recount, settle, keep the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fmcsa_status.domain.feed import newer
from fmcsa_status.domain.fold import (
    Fact,
    Folded,
    Loaded,
    PageKey,
    PairKey,
    count_failures_after,
    fold,
    paged_requests,
    settle,
)
from fmcsa_status.domain.state import (
    Change,
    Company,
    DayCount,
    DayKey,
    Entry,
    HistoryKey,
    Pair,
    Point,
    Totals,
)
from fmcsa_status_view.rows import CarrierRow, ViolationPageRow, ViolationRow


@dataclass
class MemoryProjection:
    """Every row of the projection; `apply` folds one batch of facts into it."""

    entries: dict[str, Entry] = field(default_factory=dict)
    pairs: dict[PairKey, Pair] = field(default_factory=dict)
    companies: dict[str, Company] = field(default_factory=dict)
    totals: dict[str, Totals] = field(default_factory=dict)
    daily: dict[DayKey, DayCount] = field(default_factory=dict)
    changes: dict[str, Change] = field(default_factory=dict)
    history: dict[HistoryKey, Point] = field(default_factory=dict)
    carriers: dict[str, CarrierRow] = field(default_factory=dict)
    violations: dict[str, list[ViolationRow]] = field(default_factory=dict)
    pages: dict[PageKey, ViolationPageRow] = field(default_factory=dict)

    def apply(self, facts: Sequence[Fact]) -> Folded:
        """Fold one batch; returns the fold's result (its `rejected` facts changed nothing)."""
        wanted = paged_requests(facts)
        held: dict[str, list[ViolationPageRow]] = {}
        for (request_id, _), page in sorted(self.pages.items()):
            if request_id in wanted:
                held.setdefault(request_id, []).append(page)
        loaded = Loaded(self.entries, self.pairs, self.companies, self.changes, held)
        folded = fold(loaded, facts)
        entries = {**self.entries, **folded.entries}
        recounted: dict[PairKey, int] = {}
        for key in folded.recount:
            success = folded.pairs[key].success_key
            mine = (e for e in entries.values() if (e.dot, e.source) == key)
            recounted[key] = count_failures_after(mine, success)
        settled = settle(loaded, folded, recounted)
        self.entries = entries
        self.pairs.update(settled.pairs)
        self.companies.update(settled.companies)
        for scope, delta in settled.totals.items():
            total = Totals(scope)  # a new value: a copy of this projection may share the old one
            for part in (self.totals.get(scope), delta):
                if part is not None:
                    total.add(part)
            if total.is_zero:  # increments that cancel out leave no row worth comparing
                self.totals.pop(scope, None)
            else:
                self.totals[scope] = total
        for day, count in folded.daily.items():
            had = self.daily.get(day) or DayCount()
            self.daily[day] = DayCount(had.succeeded + count.succeeded, had.failed + count.failed)
        self.carriers.update(settled.carriers)
        for dot, rows in settled.violations.items():
            self.violations[dot] = list(rows)
        for row in settled.added_violations:
            by_seq = {r.seq: r for r in self.violations.get(row.dot, [])}
            by_seq[row.seq] = row
            self.violations[row.dot] = [by_seq[seq] for seq in sorted(by_seq)]
        self.pages = {k: p for k, p in self.pages.items() if k[0] not in settled.released_pages}
        for page in settled.held_pages:
            self.pages[(page.request_id, page.first_seq)] = page
        self.changes.update(folded.changes)  # keyed by event id: a replaced row goes with its key
        for spot, point in folded.history.items():
            if newer(point, self.history.get(spot)):
                self.history[spot] = point
        return folded
