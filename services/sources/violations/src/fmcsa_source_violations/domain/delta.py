"""Delta reads of the violations dataset, decided without I/O: which carriers need a full read, how the
carriers that need only a delta are batched into one query, how a batched answer is split per carrier,
and what a carrier's delta does to its store.

- `needs_reconciliation(mark, now=, period=)`: a carrier is read in full (and may age rows out) when it
  was never fully read, when the newest publication it has seen is newer than the one of its last full
  read (one full read after each new SMS publication), or when its last full read is `period` old.
- `batches(pending, url_budget=, max_carriers=)`: carriers sorted by their mark and cut into
  `dot_number IN (...) AND :updated_at > 'mark'` queries, each `$where` at most `url_budget` characters
  once URL-encoded and at most `max_carriers` DOTs; the batch's mark is the oldest of its carriers (a row
  a carrier held already comes back unchanged, never missed). Carriers without a mark (no row ever seen,
  e.g. a clean carrier) join a batch as `OR dot_number IN (...)`, without the `:updated_at` filter.
- `split(dots, rows)`: one batched answer (rows of many carriers) as each carrier's delta, ordinals
  numbered per carrier as a full read numbers them; a row of a DOT not asked for is refused.
- `delta_plan(held, delta, seen)`: the plan of a delta read: what a full read made of the held window
  with the delta's rows laid over it would plan (same inserts, updates and `violations_added` facts),
  so it never ages anything out (only a full read can tell that a row left), and counts only the rows
  the delta brought.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import quote

from fmcsa_source_kit.gate_rule import soql_instant
from fmcsa_source_kit.plan import Observation
from fmcsa_source_violations.domain.changes import Held, ViolationsPlan, plan
from fmcsa_source_violations.domain.model import Violation, ViolationsFetch
from fmcsa_source_violations.domain.parse import assign_ordinals


@dataclass(frozen=True, slots=True)
class Mark:
    """What the store remembers of a carrier's reads, for deciding its next one.

    `high_water`: the newest `:updated_at` of the answers that read it (None: none seen yet);
    `full_read_at` / `full_read_as_of`: when its last full read was made and the dataset's as-of then
    (None: never fully read); `seen_as_of`: the newest dataset as-of any read of it has seen.
    """

    high_water: datetime | None
    full_read_at: datetime | None
    full_read_as_of: datetime | None
    seen_as_of: datetime | None


def needs_reconciliation(mark: Mark | None, *, now: datetime, period: timedelta) -> bool:
    """True when the carrier's next read must be a full one (module docstring)."""
    if mark is None or mark.full_read_at is None:
        return True
    if mark.seen_as_of is not None and (
        mark.full_read_as_of is None or mark.seen_as_of > mark.full_read_as_of
    ):
        return True
    return now - mark.full_read_at >= period


@dataclass(frozen=True, slots=True)
class Batch:
    """One batched delta query: carriers with a mark (their rows newer than `since`, the oldest of their
    marks) and carriers without one (every row of theirs: nothing was ever seen of them).
    """

    marked: tuple[str, ...]
    since: datetime | None
    unmarked: tuple[str, ...] = ()

    @property
    def dots(self) -> tuple[str, ...]:
        return self.marked + self.unmarked

    @property
    def where(self) -> str:
        return where_clause(self.marked, self.since, self.unmarked)


def where_clause(marked: Sequence[str], since: datetime | None, unmarked: Sequence[str] = ()) -> str:
    """`dot_number IN ('1','2') AND :updated_at > '...'`, `OR dot_number IN (...)` for the carriers
    without a mark, from canonical DOTs only (digits, checked here again: no text from outside reaches
    SoQL). `dot_number` is text in the dataset, hence the quotes.
    """
    every = [*marked, *unmarked]
    if not every or any(not dot.isdigit() or not dot.isascii() for dot in every):
        raise ValueError("a batch needs canonical DOT numbers")
    if marked and since is None:
        raise ValueError("marked carriers need the batch's mark")

    def listed(dots: Sequence[str]) -> str:
        return "dot_number IN (" + ",".join(f"'{dot}'" for dot in dots) + ")"

    newer = f"{listed(marked)} AND :updated_at > '{soql_instant(since)}'" if marked and since else ""
    if not unmarked:
        return newer
    return f"({newer}) OR {listed(unmarked)}" if newer else listed(unmarked)


def batches(
    pending: Iterable[tuple[str, datetime | None]], *, url_budget: int, max_carriers: int
) -> list[Batch]:
    """Cut the carriers waiting for a delta (DOT, its mark) into batched queries (module docstring):
    sorted by mark (unmarked last), each `$where` within `url_budget` URL-encoded characters and
    `max_carriers` DOTs. A carrier whose `$where` alone exceeds the budget still gets a batch of its own.
    """
    ordered = sorted(set(pending), key=lambda item: (item[1] is None, item[1] or datetime.min, int(item[0])))
    result: list[Batch] = []
    current = Batch((), None)
    for dot, mark in ordered:
        grown = (
            Batch((*current.marked, dot), current.since or mark, current.unmarked)
            if mark is not None
            else Batch(current.marked, current.since, (*current.unmarked, dot))
        )
        if current.dots and (
            len(current.dots) >= max_carriers or len(quote(grown.where, safe="")) > url_budget
        ):
            result.append(current)
            grown = Batch((dot,), mark) if mark is not None else Batch((), None, (dot,))
        current = grown
    if current.dots:
        result.append(current)
    return result


class ForeignRow(ValueError):
    """A batched answer held a row of a DOT that was not asked for."""


def split(dots: Iterable[str], rows: Iterable[Violation]) -> dict[str, tuple[Violation, ...]]:
    """Each asked carrier's rows of one batched answer (empty for a carrier with none), ordinals numbered
    per carrier as a full read numbers them. Raises `ForeignRow` for a row of a DOT not asked for.
    """
    per: dict[str, list[Violation]] = {dot: [] for dot in dots}
    for violation in rows:
        rows_of = per.get(str(violation.dot_number))
        if rows_of is None:
            raise ForeignRow(f"row for DOT {violation.dot_number}, not in the batch")
        rows_of.append(violation)
    return {dot: assign_ordinals(found) for dot, found in per.items()}


def align_ordinals(held: Held, rows: Sequence[Violation]) -> tuple[Violation, ...]:
    """The delta's rows with the ordinals of the held rows they are. A group of identical keys
    (unique_id, viol_code, viol_unit) that the delta brings whole (at least as many rows as are held in
    the window) keeps the ordinals a full read would give it. A group it brings in part: a row whose
    content a held row of the group has takes that row's ordinal; any other is a new row after the
    group's highest held ordinal. The monthly run rewrites every row, so partial groups are rare.
    """
    live: defaultdict[tuple[int, str, str, str], list[Violation]] = defaultdict(list)
    top: dict[tuple[int, str, str, str], int] = {}
    for row in held.rows:
        group = row.violation.key[:4]
        top[group] = max(top.get(group, -1), row.violation.ordinal)
        if not row.aged_out:
            live[group].append(row.violation)
    brought: defaultdict[tuple[int, str, str, str], list[Violation]] = defaultdict(list)
    for violation in rows:
        brought[violation.key[:4]].append(violation)
    aligned: list[Violation] = []
    for group, found in brought.items():
        holding = live.get(group, [])
        if len(found) >= len(holding):
            aligned.extend(found)
            continue
        free = {v.ordinal: v.content_hash for v in holding}
        next_ordinal = top.get(group, -1) + 1
        for violation in found:
            match = next((o for o, digest in sorted(free.items()) if digest == violation.content_hash), None)
            if match is None:
                match, next_ordinal = next_ordinal, next_ordinal + 1
            else:
                del free[match]
            aligned.append(replace(violation, ordinal=match))
    return tuple(aligned)


def merged(held: Held, delta: ViolationsFetch) -> ViolationsFetch:
    """The carrier's window after the delta: the held window with the delta's rows laid over it, with
    the delta's read time and as-of. This is what the summary of a delta's outcome describes.
    """
    window = {violation.key: violation for violation in held.window().records}
    window.update((violation.key, violation) for violation in delta.records)
    return replace(delta, records=tuple(window.values()))


def delta_plan(held: Held, delta: ViolationsFetch, seen: Observation) -> ViolationsPlan:
    """The plan of a delta read (its rows aligned first, `align_ordinals`): the full plan of the merged
    window, which ages nothing out, with `unchanged` counting only the delta's rows.
    """
    delta = replace(delta, records=align_ordinals(held, delta.records))
    full = plan(held, merged(held, delta), seen)
    assert not full.age_out, "a merged window keeps every held row"
    unchanged = len(delta.records) - len(full.insert) - len(full.update)
    return replace(full, unchanged=unchanged)


def newest(marks: Iterable[datetime | None]) -> datetime | None:
    """The newest of some marks (None when there is none)."""
    return max((mark for mark in marks if mark is not None), default=None)


def per_carrier(
    batch: Batch, rows: Iterable[Violation], *, high_water: datetime | None
) -> Mapping[str, tuple[tuple[Violation, ...], datetime | None]]:
    """Each carrier's delta rows and its new mark: the batch answer's newest `:updated_at` (the answer
    was complete for every carrier of the batch up to it), or the batch's own mark when it had no row.
    """
    mark = newest((high_water, batch.since))
    return {dot: (found, mark) for dot, found in split(batch.dots, rows).items()}
