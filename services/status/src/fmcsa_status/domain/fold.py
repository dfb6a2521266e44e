"""The fold: from events to the status of every (company, source), the sync log and the totals.

Guarantees (each has a test):
- Idempotent: a fact seen before (same request part, same outcome, same lifecycle event) changes
  nothing, whatever the batch it arrives in.
- Order-safe: the result depends on the set of facts, not their arrival order. Requests are ordered by
  `(requested_at, request_id)`; a late outcome of an older request updates the sync log and the
  counters but never the newer request's status. An outcome that arrives before its request waits in
  the sync log and is applied when the request arrives.
- The change feed and the history (`domain/feed.py`): a change is kept once per deterministic event
  id, at the lowest stream position it was seen at; a success adds history points, and of two points
  at one (DOT, source, subject, as-of) the newest observation wins (`feed.newer`).
- The carrier record (`fmcsa_status_view.record`): `settle` derives a DOT's record again whenever the
  newest success of one of its sources changes (so it depends on the set of facts, like the pairs), and
  its violation rows when that source is violations.
- Pages of violation rows (`ViolationsListed`, published before their request's outcome): a page whose
  request has no outcome applied yet (no outcome, or no request) is held (`status_violation_page`);
  applying the outcome takes the held pages of its request into the carrier's violation rows when it
  is the newest violations success, and drops them either way. A page that comes after its outcome
  is added to the rows when its request is still the newest success, dropped otherwise. So the rows
  are the newest success's summary rows and pages, whatever the order they are folded in.
- Pure: `fold` and `settle` take the rows a batch touches and return the rows it changed; the caller
  loads and stores them. The one thing a partial view cannot know, the number of failures after a
  success that arrived late, is named in `Folded.recount` for the caller to count in the full log.

Impossible content is refused, not folded: an outcome or request whose (DOT, source) differs from
what is known for its request id, a second request with other content under the same id, a second
outcome of another kind for the same request, a finish before the start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CarrierDataChanged,
    CompanyRegistered,
    CompanyRemoved,
    Event,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    ViolationsListed,
)
from fmcsa_status.domain.feed import change_of, history_points, newer
from fmcsa_status.domain.state import (
    ALL,
    Change,
    Company,
    DayCount,
    DayKey,
    Entry,
    HistoryKey,
    JsonObject,
    Pair,
    Point,
    RequestKey,
    SyncState,
    Totals,
    derive,
    latest,
    utc,
)
from fmcsa_status_view.record import carrier_record, page_rows, violation_rows
from fmcsa_status_view.rows import CarrierRow, ViolationPageRow, ViolationRow

PairKey = tuple[str, SourceKey]
PageKey = tuple[str, int]
"""`(request id, offset)` of a page of violation rows."""

CONFLICTING_REQUEST = "conflicting_request"
CONFLICTING_OUTCOME = "conflicting_outcome"
MISMATCHED_REQUEST = "mismatched_request"
MISMATCHED_OUTCOME = "mismatched_outcome"
IMPOSSIBLE_TIMES = "impossible_times"


@dataclass(frozen=True, slots=True)
class Fact:
    """One decoded event with what the fold needs of its envelope, and its stream sequence
    (`position`: the change feed's order; 0 where no stream is involved).
    """

    event: Event
    event_id: str
    occurred_at: datetime
    position: int = 0


@dataclass(frozen=True, slots=True)
class Loaded:
    """The current rows a batch touches: entries by request id, every pair and company row of
    every DOT in the batch, and the feed's changes by event id (missing keys mean: no row yet).
    History points are not loaded: the fold names its candidates, the caller keeps the newer.
    """

    entries: Mapping[str, Entry]
    pairs: Mapping[PairKey, Pair]
    companies: Mapping[str, Company]
    changes: Mapping[str, Change] = field(default_factory=dict)
    pages: Mapping[str, Sequence[ViolationPageRow]] = field(default_factory=dict)
    """Held pages of violation rows by request id, for every violations outcome of the batch that has
    any (`paged_requests` names the request ids to load)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A fact the fold refused: `index` into the batch's facts, a reason token and a short detail."""

    index: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Folded:
    entries: Mapping[str, Entry]
    pairs: Mapping[PairKey, Pair]
    lifecycles: Mapping[str, Company]
    touched_dots: frozenset[str]
    recount: frozenset[PairKey]
    tallies: Mapping[str, Totals]
    daily: Mapping[DayKey, DayCount]
    rejected: tuple[Rejected, ...]
    changes: Mapping[str, Change] = field(default_factory=dict)
    """New feed rows by event id; each replaces a held row of its id (at `dropped_changes`)."""
    dropped_changes: frozenset[int] = frozenset()
    """Positions of held feed rows a lower position of the same event id replaces (never in stream
    order: only when facts are folded out of order)."""
    history: Mapping[HistoryKey, Point] = field(default_factory=dict)
    """The batch's newest point per key: the caller keeps it unless it holds a newer one there."""
    pages: Mapping[PageKey, ViolationPageRow] = field(default_factory=dict)
    """The batch's pages of violation rows (a repeat once); `settle` decides what becomes of each."""


@dataclass(frozen=True, slots=True)
class Settled:
    """The rows a batch changed, final, and the increments of each totals scope; the carrier records
    derived again (`carriers`) and the DOTs whose violation rows are replaced as a whole (`violations`).
    """

    pairs: Mapping[PairKey, Pair]
    companies: Mapping[str, Company]
    totals: Mapping[str, Totals]
    carriers: Mapping[str, CarrierRow] = field(default_factory=dict)
    violations: Mapping[str, Sequence[ViolationRow]] = field(default_factory=dict)
    added_violations: Sequence[ViolationRow] = ()
    """Rows of pages folded after their outcome, added to (or replacing, by `(dot, seq)`) the rows held."""
    held_pages: Sequence[ViolationPageRow] = ()
    """Pages whose request has no outcome yet: kept (by request id and offset) until it has."""
    released_pages: frozenset[str] = frozenset()
    """Request ids whose held pages the batch's outcomes took or dropped: deleted."""


def paged_requests(facts: Iterable[Fact]) -> set[str]:
    """The request ids whose held pages a batch needs (`Loaded.pages`): those of its violations requests
    and outcomes (either may be the one that makes a request complete, its outcome applied).
    """
    return {
        str(f.event.request_id)
        for f in facts
        if isinstance(f.event, SyncRequested | SourceSynced | SourceFailed)
        and f.event.source == SourceKey.VIOLATIONS
    }


def fold(loaded: Loaded, facts: Sequence[Fact]) -> Folded:
    """Fold a batch of facts over the rows it touches; see the module docstring for the guarantees."""
    work = _Work(loaded)
    for index, fact in enumerate(facts):
        match fact.event:
            case SyncRequested() as request:
                work.on_request(index, request)
            case SourceSynced() | SourceFailed() as outcome:
                work.on_outcome(index, outcome)
            case SyncAttemptFailed() as progress:
                work.on_retry(index, progress)
            case CompanyRegistered() as registered:
                work.on_lifecycle(registered.dot, _lifecycle_key(fact), registered.name, registered=True)
            case CompanyRemoved() as removed:
                work.on_lifecycle(removed.dot, _lifecycle_key(fact), None, registered=False)
            case CarrierDataChanged() as changed:
                work.on_change(changed, fact.position)
            case ViolationsListed() as page:
                work.pages.setdefault(
                    (str(page.request_id), page.offset),
                    ViolationPageRow(
                        str(page.request_id), page.offset, page.dot, [dict(r) for r in page.rows]
                    ),
                )
            case _:
                pass  # schedules and other facts do not change the status
    return work.result()


def settle(loaded: Loaded, folded: Folded, recounted: Mapping[PairKey, int]) -> Settled:
    """Finish a batch: put in the recounted failures, derive pair and company fields, and add the
    state-driven increments (pairs and companies failing, never synced, active) to the totals.

    `recounted` must hold a count for every key of `folded.recount`: the failed, complete requests
    of that pair newer than its (final) newest success, counted in the full sync log. The rows of
    `folded` are the fold's own copies and are finished in place.
    """
    pairs: dict[PairKey, Pair] = {}
    totals: dict[str, Totals] = dict(folded.tallies)
    for key, pair in folded.pairs.items():
        if key in folded.recount:
            pair.consecutive_failures = recounted[key]
        derive(pair)
        before = loaded.pairs.get(key)
        if pair == before:
            continue
        pairs[key] = pair
        delta = Totals(
            pair.source.value,
            companies=0 if before is not None else 1,
            failing=int(pair.failing) - int(before is not None and before.failing),
            never_synced=int(not pair.synced) - int(before is not None and not before.synced),
        )
        _add(totals, delta)
    companies: dict[str, Company] = {}
    for dot in folded.touched_dots:
        before_company = loaded.companies.get(dot)
        base = folded.lifecycles.get(dot) or (before_company.copy() if before_company else Company(dot))
        mine = [p for s in SourceKey if (p := pairs.get((dot, s)) or loaded.pairs.get((dot, s))) is not None]
        derive_company(base, mine)
        if base != before_company:
            companies[dot] = base
            was, now = _company_counts(before_company), _company_counts(base)
            delta = Totals(
                ALL, companies=now[0] - was[0], failing=now[1] - was[1], never_synced=now[2] - was[2]
            )
            _add(totals, delta)
    carriers, violations = records_of(loaded, pairs, folded.pages)
    added, held, released = pages_of(loaded, folded, pairs, violations)
    return Settled(
        pairs,
        companies,
        {k: v for k, v in totals.items() if not v.is_zero},
        carriers,
        violations,
        added,
        held,
        released,
    )


def pages_of(
    loaded: Loaded,
    folded: Folded,
    pairs: Mapping[PairKey, Pair],
    replaced: Mapping[str, Sequence[ViolationRow]],
) -> tuple[list[ViolationRow], list[ViolationPageRow], frozenset[str]]:
    """What becomes of the batch's pages and the held ones (see the module docstring): rows added to a
    DOT's violations (pages of its newest success folded after it, unless `replaced` rewrote that DOT's
    rows with them), pages to hold, and request ids whose held pages are released.
    """
    added: list[ViolationRow] = []
    held: list[ViolationPageRow] = []
    for page in folded.pages.values():
        entry = folded.entries.get(page.request_id) or loaded.entries.get(page.request_id)
        if entry is None or not entry.complete:  # its outcome is not applied to its pair yet
            held.append(page)
            continue
        pair = pairs.get((page.dot, SourceKey.VIOLATIONS)) or loaded.pairs.get(
            (page.dot, SourceKey.VIOLATIONS)
        )
        if pair is None or pair.success_request_id != page.request_id or page.dot in replaced:
            continue  # an older request's page (dropped), or already in the rows `replaced` wrote
        added.extend(page_rows(page.dot, page.first_seq, page.rows))
    released = frozenset(
        request_id
        for request_id, pages in loaded.pages.items()
        if pages and (entry := folded.entries.get(request_id)) is not None and entry.complete
    )
    return added, held, released


def records_of(
    loaded: Loaded, pairs: Mapping[PairKey, Pair], pages: Mapping[PageKey, ViolationPageRow] | None = None
) -> tuple[dict[str, CarrierRow], dict[str, list[ViolationRow]]]:
    """The carrier records of the DOTs where a source's newest success changed, and the violation rows
    of those where it was the violations source's (an older summary without rows: none): its summary's
    rows, then those of its pages (held in `loaded.pages`, or in the batch's `pages`).
    """
    moved: dict[str, set[SourceKey]] = {}
    for (dot, source), pair in pairs.items():
        before = loaded.pairs.get((dot, source))
        if pair.success_request_id != (before.success_request_id if before is not None else None):
            moved.setdefault(dot, set()).add(source)
    carriers: dict[str, CarrierRow] = {}
    violations: dict[str, list[ViolationRow]] = {}
    for dot, sources in moved.items():
        mine = {
            s: p for s in SourceKey if (p := pairs.get((dot, s)) or loaded.pairs.get((dot, s))) is not None
        }
        record = carrier_record(dot, mine)
        if record is not None:
            carriers[dot] = record
        if SourceKey.VIOLATIONS in sources:
            success = mine[SourceKey.VIOLATIONS]
            summary = success.last_summary
            before = loaded.pairs.get((dot, SourceKey.VIOLATIONS))
            if (
                before is not None
                and before.success_request_id is not None
                and not _paged(summary)
                and not _paged(before.last_summary)
                and _listed(before.last_summary) == _listed(summary)
            ):
                continue  # the same rows as held: nothing to rewrite (most fetches change nothing)
            rows = violation_rows(dot, summary) or []
            request_id = success.success_request_id or ""
            mine_pages = {p.first_seq: p for p in loaded.pages.get(request_id, ())}
            for (page_request, offset), page in (pages or {}).items():
                if page_request == request_id:
                    mine_pages[offset] = page
            for offset in sorted(mine_pages):
                rows.extend(page_rows(dot, offset, mine_pages[offset].rows))
            by_seq = {row.seq: row for row in rows}  # a page that overlaps another wins (a bad event)
            violations[dot] = [by_seq[seq] for seq in sorted(by_seq)]
    return carriers, violations


def _paged(summary: JsonObject | None) -> bool:
    """Whether a violations summary lists fewer rows than its `rows_total` (the rest are in pages)."""
    if not isinstance(summary, dict):
        return False
    rows, total = summary.get("rows"), summary.get("rows_total")
    return isinstance(rows, list) and isinstance(total, int) and total > len(rows)


def _listed(summary: JsonObject | None) -> object:
    """The rows a violations summary lists (None: it lists none)."""
    return summary.get("rows") if isinstance(summary, dict) else None


def derive_company(company: Company, pairs: Iterable[Pair]) -> None:
    """Set the company's derived fields from its lifecycle and its sources' status (in place)."""
    registered, removed = company.registered_key, company.removed_key
    failing: list[str] = []
    synced = ran = False
    for pair in pairs:
        ran = ran or pair.last_finished_at is not None
        if pair.consecutive_failures > 0:
            failing.append(pair.source.value)
        synced = synced or pair.synced
    failing.sort()
    company.active = registered is not None and (removed is None or registered > removed)
    company.success = ran and not failing
    company.failing = bool(failing)
    company.never_synced = not synced
    company.failing_sources = ",".join(failing)


def count_failures_after(entries: Iterable[Entry], success: RequestKey | None) -> int:
    """Failed, complete requests newer than `success` (all of them when there is no success):
    the exact `consecutive_failures` of one pair, over that pair's entries.
    """
    count = 0
    for entry in entries:
        key = entry.key
        failed = entry.status == SyncState.FAILED and key is not None and entry.has_outcome
        if failed and (success is None or (key is not None and key > success)):
            count += 1
    return count


def _lifecycle_key(fact: Fact) -> tuple[datetime, str]:
    return (utc(fact.occurred_at), fact.event_id)


def _company_counts(company: Company | None) -> tuple[int, int, int]:
    if company is None or not company.active:
        return (0, 0, 0)
    return (1, int(company.failing), int(company.never_synced))


def _add(totals: dict[str, Totals], delta: Totals) -> None:
    have = totals.get(delta.scope)
    if have is None:
        totals[delta.scope] = delta
    else:
        have.add(delta)


class _Work:
    """The working set of one `fold` call: its own copies of the rows it changed (made on first touch,
    so the loaded rows are never changed), and the counters of the batch.
    """

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.entries: dict[str, Entry] = {}
        self.pairs: dict[PairKey, Pair] = {}
        self.lifecycles: dict[str, Company] = {}
        self.dots: set[str] = set()
        self.recount: set[PairKey] = set()
        self.tallies: dict[str, Totals] = {ALL: Totals(ALL)}
        self.daily: dict[DayKey, DayCount] = {}
        self.rejected: list[Rejected] = []
        self.changes: dict[str, Change] = {}
        self.dropped_changes: set[int] = set()
        self.history: dict[HistoryKey, Point] = {}
        self.pages: dict[PageKey, ViolationPageRow] = {}

    def result(self) -> Folded:
        return Folded(
            entries=self.entries,
            pairs=self.pairs,
            lifecycles=self.lifecycles,
            touched_dots=frozenset(self.dots),
            recount=frozenset(self.recount),
            tallies={k: v for k, v in self.tallies.items() if not v.is_zero},
            daily=self.daily,
            rejected=tuple(self.rejected),
            changes=self.changes,
            dropped_changes=frozenset(self.dropped_changes),
            history=self.history,
            pages=self.pages,
        )

    def entry(self, request_id: str) -> Entry | None:
        return self.entries.get(request_id) or self.loaded.entries.get(request_id)

    def own_entry(self, request_id: str, dot: str, source: SourceKey) -> Entry:
        entry = self.entries.get(request_id)
        if entry is None:
            known = self.loaded.entries.get(request_id)
            entry = known.copy() if known is not None else Entry(request_id, dot, source)
            self.entries[request_id] = entry
        return entry

    def own_pair(self, dot: str, source: SourceKey) -> Pair:
        key = (dot, source)
        pair = self.pairs.get(key)
        if pair is None:
            known = self.loaded.pairs.get(key)
            pair = known.copy() if known is not None else Pair(dot, source)
            self.pairs[key] = pair
        return pair

    def tallies_of(self, source: SourceKey) -> tuple[Totals, Totals]:
        mine = self.tallies.get(source.value)
        if mine is None:
            mine = self.tallies[source.value] = Totals(source.value)
        return mine, self.tallies[ALL]

    def reject(self, index: int, reason: str, detail: str) -> None:
        self.rejected.append(Rejected(index, reason, detail[:400]))

    def on_request(self, index: int, request: SyncRequested) -> None:
        request_id, dot, source = str(request.request_id), request.dot, request.source
        requested_at, deadline = utc(request.requested_at), utc(request.deadline)
        trigger = request.trigger.value
        known = self.entry(request_id)
        if known is not None:
            if (known.dot, known.source) != (dot, source):
                where = f"{known.source.value}/{known.dot}"
                self.reject(index, MISMATCHED_REQUEST, f"request {request_id} is known for {where}")
                return
            if known.has_request:
                made = (known.requested_at, known.deadline, known.trigger, known.requested_by)
                if made != (requested_at, deadline, trigger, request.requested_by):
                    detail = f"request {request_id} was made with other content"
                    self.reject(index, CONFLICTING_REQUEST, detail)
                return  # a duplicate: nothing changes
        self.dots.add(dot)
        entry = self.own_entry(request_id, dot, source)
        entry.trigger = trigger
        entry.requested_by = request.requested_by
        entry.requested_at = requested_at
        entry.deadline = deadline
        for tally in self.tallies_of(source):
            tally.requests += 1
        pair = self.own_pair(dot, source)
        pair.requests += 1
        current = pair.request_key
        if current is None or (requested_at, request_id) > current:
            pair.last_request_id = request_id
            pair.last_requested_at = requested_at
            pair.last_trigger = trigger
            pair.last_requested_by = request.requested_by
        if entry.has_outcome:  # its outcome came first and waited for it
            self.apply_outcome(pair, entry, entry.pending_summary)
            entry.pending_summary = None

    def on_outcome(self, index: int, outcome: SourceSynced | SourceFailed) -> None:
        request_id, dot, source = str(outcome.request_id), outcome.dot, outcome.source
        finished = utc(outcome.finished_at)
        started = utc(outcome.started_at) if outcome.started_at is not None else None
        if started is not None and started > finished:
            self.reject(index, IMPOSSIBLE_TIMES, f"outcome of {request_id} finished before it started")
            return
        synced = isinstance(outcome, SourceSynced)
        status = SyncState.SUCCEEDED if synced else SyncState.FAILED
        known = self.entry(request_id)
        if known is not None:
            if (known.dot, known.source) != (dot, source):
                where = f"{known.source.value}/{known.dot}"
                detail = f"outcome of {request_id} names another pair than {where}"
                self.reject(index, MISMATCHED_OUTCOME, detail)
                return
            if known.has_outcome:
                if known.status != status:
                    detail = f"request {request_id} already ended {known.status}"
                    self.reject(index, CONFLICTING_OUTCOME, detail)
                return  # a duplicate: nothing changes
        self.dots.add(dot)
        entry = self.own_entry(request_id, dot, source)
        entry.status = status
        entry.started_at = started
        entry.finished_at = finished
        entry.duration_ms = (
            None if started is None else max(0, int((finished - started).total_seconds() * 1000))
        )
        entry.attempts = outcome.attempts
        summary: JsonObject | None = None
        day_key = (finished.date().isoformat(), source.value)
        day = self.daily.get(day_key)
        if day is None:
            day = self.daily[day_key] = DayCount()
        if isinstance(outcome, SourceSynced):
            counts = outcome.counts
            entry.fetched, entry.inserted = counts.fetched, counts.inserted
            entry.updated, entry.unchanged = counts.updated, counts.unchanged
            entry.upstream_as_of = utc(outcome.upstream_as_of) if outcome.upstream_as_of is not None else None
            entry.retrieved_at = utc(outcome.retrieved_at) if outcome.retrieved_at is not None else None
            entry.checked_unchanged = outcome.checked_unchanged
            summary = dict(outcome.summary)
            for point in history_points(outcome):
                if newer(point, self.history.get(point.key)):
                    self.history[point.key] = point
            for tally in self.tallies_of(source):
                tally.succeeded += 1
                tally.last_finished_at = latest(tally.last_finished_at, finished)
                tally.last_success_at = latest(tally.last_success_at, finished)
            day.succeeded += 1
        else:
            entry.error_kind = outcome.kind.value
            entry.error_message = outcome.message
            entry.error_detail = outcome.detail
            entry.error_retryable = outcome.retryable
            for tally in self.tallies_of(source):
                tally.failed += 1
                tally.last_finished_at = latest(tally.last_finished_at, finished)
            day.failed += 1
        if entry.has_request:
            self.apply_outcome(self.own_pair(dot, source), entry, summary)
        elif summary is not None:
            entry.pending_summary = summary

    def on_retry(self, index: int, progress: SyncAttemptFailed) -> None:
        """Keep the newest attempt's progress on the request's sync-log row: the highest attempt wins,
        whatever the order, so a duplicate or a late report of an earlier attempt changes nothing. After
        the outcome the row keeps it as history; the view shows it only while the request waits.
        """
        request_id, dot, source = str(progress.request_id), progress.dot, progress.source
        known = self.entry(request_id)
        if known is not None:
            if (known.dot, known.source) != (dot, source):
                where = f"{known.source.value}/{known.dot}"
                detail = f"retry of {request_id} names another pair than {where}"
                self.reject(index, MISMATCHED_OUTCOME, detail)
                return
            if known.retry_attempt is not None and known.retry_attempt >= progress.attempt:
                return
        entry = self.own_entry(request_id, dot, source)  # the row only: no pair or company changes
        entry.retry_attempt = progress.attempt
        entry.retry_max_attempts = progress.max_attempts
        entry.retry_kind = progress.kind.value
        entry.retry_message = progress.message
        entry.retry_at = utc(progress.retry_at)
        if not entry.has_outcome:
            entry.started_at = utc(progress.first_attempt_at)

    def apply_outcome(self, pair: Pair, entry: Entry, summary: JsonObject | None) -> None:
        """Fold one complete request's outcome into its pair (in place); order-safe by request key."""
        key = entry.key
        assert key is not None, "only a complete entry has an outcome to apply"
        success, error = pair.success_key, pair.error_key
        if entry.status == SyncState.SUCCEEDED:
            pair.succeeded += 1
            if success is not None and key < success:
                return  # a late success of an older request: the newer one stays
            if error is None or key > error:
                pair.consecutive_failures = 0
            else:  # failures newer than this success may exist, older ones no longer count
                self.recount.add((pair.dot, pair.source))
            pair.success_request_id = entry.request_id
            pair.success_requested_at = entry.requested_at
            pair.last_success_at = entry.finished_at
            pair.success_attempts = entry.attempts
            pair.success_duration_ms = entry.duration_ms
            pair.fetched, pair.inserted = entry.fetched, entry.inserted
            pair.updated, pair.unchanged = entry.updated, entry.unchanged
            pair.last_summary = summary
            pair.upstream_as_of = entry.upstream_as_of
            pair.retrieved_at = entry.retrieved_at
            pair.checked_unchanged = entry.checked_unchanged
            return
        pair.failed += 1
        if success is None or key > success:
            pair.consecutive_failures += 1
        if error is None or key > error:
            pair.error_request_id = entry.request_id
            pair.error_requested_at = entry.requested_at
            pair.last_error_at = entry.finished_at
            pair.error_kind = entry.error_kind
            pair.error_message = entry.error_message
            pair.error_retryable = entry.error_retryable
            pair.error_attempts = entry.attempts

    def on_change(self, event: CarrierDataChanged, position: int) -> None:
        """Keep a change once per event id, at the lowest position it was seen at (in stream order
        the first: a republish changes nothing).
        """
        change = change_of(event, position)
        mine = self.changes.get(change.event_id)
        held = mine if mine is not None else self.loaded.changes.get(change.event_id)
        if held is not None and held.position <= position:
            return  # a duplicate: nothing changes
        if held is not None and mine is None:
            self.dropped_changes.add(held.position)
        self.changes[change.event_id] = change

    def on_lifecycle(
        self, dot: str, key: tuple[datetime, str], name: str | None, *, registered: bool
    ) -> None:
        """Registered and removed are each last-writer-wins by (occurred_at, event_id)."""
        self.dots.add(dot)
        company = self.lifecycles.get(dot)
        if company is None:
            known = self.loaded.companies.get(dot)
            company = known.copy() if known is not None else Company(dot)
        current = company.registered_key if registered else company.removed_key
        if current is not None and key <= current:
            return
        if registered:
            company.registered_at, company.registered_event_id, company.name = key[0], key[1], name
        else:
            company.removed_at, company.removed_event_id = key[0], key[1]
        self.lifecycles[dot] = company
