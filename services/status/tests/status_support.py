"""Builders of event histories for the status tests (imported by name through conftest.py)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import strategies as st
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from sqlalchemy import Table

from fmcsa_events.bus import Bus
from fmcsa_events.consume import Delivered
from fmcsa_events.decoder import Decoded, decode, encode
from fmcsa_events.envelope import envelope_for, event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CarrierDataChanged,
    ChangeKind,
    CompanyRegistered,
    CompanyRemoved,
    Counts,
    ErrorKind,
    Event,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
    ViolationsListed,
)
from fmcsa_events.subjects import EVENTS_WILDCARD, subject_for
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_status.domain.fold import Fact
from fmcsa_status.domain.memory import MemoryProjection
from fmcsa_status.store import StatusStore
from fmcsa_status_view.tables import (
    CARRIER,
    CHANGE,
    COMPANY,
    DAILY,
    HISTORY,
    POSITION,
    SOURCE,
    SYNC_LOG,
    TABLES,
    TOTALS,
    VIOLATION,
    VIOLATION_PAGE,
    columns,
)

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def request(
    dot: str = "2847193",
    source: SourceKey = SourceKey.CSA,
    minute: float = 0,
    *,
    request_id: UUID | None = None,
    trigger: Trigger = Trigger.MANUAL,
    requested_by: str = "tester",
) -> SyncRequested:
    requested_at = at(minute)
    return SyncRequested(
        request_id=request_id or uuid4(),
        dot=dot,
        source=source,
        trigger=trigger,
        requested_by=requested_by,
        requested_at=requested_at,
        deadline=requested_at + timedelta(minutes=30),
        slot=requested_at if trigger != Trigger.MANUAL else None,
    )


def synced(
    req: SyncRequested,
    minute: float,
    *,
    fetched: int = 3,
    summary: dict[str, object] | None = None,
    as_of: datetime = datetime(2026, 10, 31),
) -> SourceSynced:
    finished = at(minute)
    return SourceSynced(
        request_id=req.request_id,
        dot=req.dot,
        source=req.source,
        counts=Counts(fetched=fetched, inserted=1, updated=1, unchanged=max(0, fetched - 2)),
        attempts=1,
        started_at=finished - timedelta(seconds=2),
        finished_at=finished,
        retrieved_at=finished,
        upstream_as_of=as_of,
        summary=summary if summary is not None else {"fetched": fetched, "note": f"run {minute}"},  # type: ignore[dict-item]
    )


def failed(
    req: SyncRequested,
    minute: float,
    *,
    kind: ErrorKind = ErrorKind.UPSTREAM_ERROR,
    message: str = "upstream answered 503",
    retryable: bool = True,
) -> SourceFailed:
    finished = at(minute)
    return SourceFailed(
        request_id=req.request_id,
        dot=req.dot,
        source=req.source,
        kind=kind,
        retryable=retryable,
        attempts=3,
        message=message,
        detail="HTTP 503 from upstream",
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
    )


def attempt_failed(
    req: SyncRequested,
    minute: float,
    *,
    attempt: int = 1,
    max_attempts: int = 5,
    kind: ErrorKind = ErrorKind.UPSTREAM_ERROR,
    retry_in_s: float = 30,
    first_minute: float | None = None,
) -> SyncAttemptFailed:
    """Attempt `attempt` of `req` failed at `minute`; the next is due `retry_in_s` later."""
    failed_at = at(minute)
    return SyncAttemptFailed(
        request_id=req.request_id,
        dot=req.dot,
        source=req.source,
        attempt=attempt,
        max_attempts=max_attempts,
        kind=kind,
        message=f"{kind} on attempt {attempt}",
        retry_at=failed_at + timedelta(seconds=retry_in_s),
        first_attempt_at=at(first_minute if first_minute is not None else minute) - timedelta(seconds=1),
    )


def csa_summary(percentile: str | None, measure: str | None = "1.25") -> dict[str, object]:
    """A csa summary as the source makes it: Unsafe Driving with these figures, Crash Not Public."""
    return {
        "basics": [
            {"id": 11, "code": "UNSAFE", "percentile": percentile, "measure": measure, "threshold": 65},
            {
                "id": 99,
                "code": "CRASH",
                "percentile": None,
                "percentile_status": "not_public",
                "measure": None,
            },
        ],
        "alerts": [],
    }


def authority_summary(
    bipd_on_file: int | None, bipd_required: int | None = 750_000, next_cancellation: str | None = None
) -> dict[str, object]:
    """An authority summary as the source makes it (AUTHORITY.md): common authority active, an MC docket."""
    return {
        "authority": {"common": "active", "contract": "none", "broker": "inactive"},
        "dockets": ["MC123456"],
        "oos_order": None,
        "insurance": {
            "bipd_required": bipd_required,
            "bipd_on_file": bipd_on_file,
            "cargo_on_file": 0,
            "bond_on_file": 0,
            "filings": 2,
            "next_cancellation": next_cancellation,
        },
    }


def violations_summary(rows: int, day: int = 1) -> dict[str, object]:
    """A violations summary as the source makes it, listing `rows` rows inspected on days from `day`."""
    listed = [
        {
            "inspection": str(900 + n),
            "code": "3922SLLS2",
            "unit": "D",
            "ordinal": 0,
            "date": f"2026-10-{day + n % 20:02d}",
            "basic": "unsafe_driving" if n % 2 else "vehicle_maintenance",
            "oos": n % 3 == 0,
            "severity": 5,
            "group": "Speeding",
            "description": f"Speeding {n}",
        }
        for n in range(rows)
    ]
    return {
        "total": rows,
        "oos": sum(1 for r in listed if r["oos"]),
        "inspections": rows,
        "per_basic": {},
        "oos_per_basic": {},
        "latest_inspection_date": None,
        "upstream_as_of": None,
        "rows": listed,
        "rows_complete": True,
    }


def paged(
    req: SyncRequested, minute: float, rows: int, *, day: int = 1, size: int = 2, fetched: int = 3
) -> list[Timed]:
    """A violations success listing `rows` rows as the source publishes it when they pass `size`: its
    pages (`ViolationsListed`, `size` rows each, just before) and the outcome with the first `size`."""
    summary = violations_summary(rows, day=day)
    listed = sorted(summary["rows"], key=lambda r: (r["date"], r["inspection"]), reverse=True)  # type: ignore[call-overload]
    summary = {**summary, "rows": listed[:size], "rows_total": rows}
    pages = [
        ViolationsListed(
            request_id=req.request_id,
            dot=req.dot,
            offset=offset,
            total=rows,
            rows=tuple(listed[offset : offset + size]),
        )
        for offset in range(size, rows, size)
    ]
    if rows <= size:
        summary["rows"] = listed
    outcome = synced(req, minute, fetched=fetched, summary=summary)
    return [*(timed(page, at(minute - 0.01)) for page in pages), timed(outcome)]


def changed(
    req: SyncRequested,
    minute: float,
    *,
    kind: ChangeKind = ChangeKind.BASIC_PERCENTILE_CHANGED,
    subject: str = "unsafe_driving",
    before: object = 60,
    after: object = 70,
) -> CarrierDataChanged:
    """A change fact the request's fetch observed (published before its outcome)."""
    return CarrierDataChanged(
        request_id=req.request_id,
        dot=req.dot,
        source=req.source,
        kind=kind,
        subject=subject,
        before=before,  # type: ignore[arg-type]
        after=after,  # type: ignore[arg-type]
        upstream_as_of=datetime(2026, 10, 1, tzinfo=UTC),
        observed_at=at(minute),
    )


def registered(dot: str, minute: float, name: str | None = None) -> tuple[CompanyRegistered, datetime]:
    return CompanyRegistered(dot=dot, name=name or f"Carrier {dot}"), at(minute)


def removed(dot: str, minute: float) -> tuple[CompanyRemoved, datetime]:
    return CompanyRemoved(dot=dot), at(minute)


@dataclass(frozen=True)
class Timed:
    """An event, the time it happened (its place in the ordered history), its event id and, for the
    pure tests of the change feed, a stream position (0: none)."""

    event: Event
    moment: datetime
    event_id: str
    position: int = 0

    @property
    def fact(self) -> Fact:
        return Fact(self.event, self.event_id, self.moment, self.position)


def timed(event: Event, moment: datetime | None = None, eid: str | None = None, position: int = 0) -> Timed:
    if moment is None:
        moment = (
            getattr(event, "finished_at", None)
            or getattr(event, "requested_at", None)
            or getattr(event, "observed_at", None)
            or T0
        )
    return Timed(event, moment, eid or event_id(event), position)


def facts(items: Iterable[Event | Timed]) -> list[Fact]:
    return [(i if isinstance(i, Timed) else timed(i)).fact for i in items]


def fold_all(items: Sequence[Fact], batch: int | Sequence[int] = 10_000) -> MemoryProjection:
    """Fold facts in batches (a size, or a list of sizes used in turn)."""
    projection = MemoryProjection()
    sizes = [batch] if isinstance(batch, int) else list(batch) or [1]
    start, turn = 0, 0
    while start < len(items):
        size = max(1, sizes[turn % len(sizes)])
        projection.apply(items[start : start + size])
        start += size
        turn += 1
    return projection


# --- hypothesis: histories of a few companies and sources ------------------------------------

DOTS = ("101", "202", "303")
SOURCES = (SourceKey.CSA, SourceKey.VIOLATIONS)


@st.composite
def histories(draw: st.DrawFn) -> list[Timed]:
    """A valid history: requests (ties in requested_at on purpose), at most one outcome each, outcomes
    finishing after their request (often after later requests: late arrivals), and company
    registrations and removals. Returned in time order (the de-duplicated, ordered history)."""
    items: list[Timed] = []
    for _ in range(draw(st.integers(0, 14))):
        dot = draw(st.sampled_from(DOTS))
        source = draw(st.sampled_from(SOURCES))
        minute = draw(st.integers(0, 6))
        rid = draw(st.uuids(version=4))
        req = request(dot, source, minute, request_id=rid)
        items.append(timed(req))
        outcome = draw(st.sampled_from(("none", "synced", "failed")))
        finish = minute + draw(st.integers(0, 8))
        if outcome == "synced":
            if source == SourceKey.CSA:  # history points, and the change the fetch observed
                percentile = draw(st.sampled_from(("40", "71", None)))
                as_of = draw(st.sampled_from((datetime(2026, 9, 1), datetime(2026, 10, 1))))
                summary = csa_summary(percentile)
                items.append(timed(changed(req, finish, after=percentile), position=len(items) + 1))
                items.append(timed(synced(req, finish, summary=summary, as_of=as_of)))
            else:
                count, day = draw(st.integers(0, 7)), draw(st.integers(1, 5))
                items.extend(paged(req, finish, count, day=day, fetched=draw(st.integers(0, 5))))
        elif outcome == "failed":
            kind = draw(st.sampled_from(list(ErrorKind)))
            items.append(timed(failed(req, finish, kind=kind, message=f"{kind} at {finish}")))
    for n in range(draw(st.integers(0, 4))):
        dot = draw(st.sampled_from(DOTS))
        minute = draw(st.integers(0, 6))
        if draw(st.booleans()):
            event, moment = registered(dot, minute, name=draw(st.sampled_from(("Acme", "Bolt", None))))
        else:
            event, moment = removed(dot, minute)
        items.append(timed(event, moment, f"lifecycle-{n}-{dot}-{minute}"))
    # requests before their outcomes at equal times; otherwise by time
    items.sort(key=lambda t: (t.moment, 0 if isinstance(t.event, SyncRequested) else 1))
    return items


@st.composite
def arrivals(draw: st.DrawFn, history: list[Timed]) -> list[Timed]:
    """Any interleaving of a history with duplicates (redeliveries, republishes) mixed in."""
    shuffled = list(draw(st.permutations(history)))
    for _ in range(draw(st.integers(0, max(0, len(history) // 2)))):
        if not history:
            break
        again = draw(st.sampled_from(history))
        shuffled.insert(draw(st.integers(0, len(shuffled))), again)
    return shuffled


def state_of(p: MemoryProjection) -> tuple[object, ...]:
    return (
        p.entries,
        p.pairs,
        p.companies,
        p.totals,
        p.daily,
        p.changes,
        p.history,
        p.carriers,
        p.violations,
        p.pages,
    )


def busy_history(seed: int, companies: int = 12, rounds: int = 6) -> list[Timed]:
    """Several rounds of requests per company and source, with failures, late outcomes (some after
    the next request), early outcomes (before their request), a duplicate of each kind, and lifecycle."""
    rng = random.Random(seed)
    items: list[Timed] = []
    dots = [str(1_000_000 + 7 * n) for n in range(companies)]
    for dot in dots:
        event, moment = registered(dot, 0, name=f"Carrier {dot}")
        items.append(timed(event, moment, f"reg-{dot}"))
    for r in range(rounds):
        for dot in dots:
            for source in SourceKey:
                minute = 10 * r + rng.random()
                req = request(dot, source, minute)
                items.append(timed(req))
                roll = rng.random()
                finish = minute + rng.choice((0.5, 1, 15, 25))  # 15/25: after the next round's request
                if roll < 0.6 and source == SourceKey.CSA:  # a change, then history points
                    percentile = str(10 * r + int(dot) % 7)
                    items.append(timed(changed(req, finish - 0.01, after=percentile)))
                    as_of = datetime(2026, 9 + r // 3, 1, tzinfo=UTC)  # repeated as-of dates
                    summary = csa_summary(percentile)
                    fetched = rng.randint(0, 9)  # drawn as for other sources: the same random sequence
                    items.append(timed(synced(req, finish, fetched=fetched, summary=summary, as_of=as_of)))
                elif roll < 0.6 and source == SourceKey.VIOLATIONS:
                    fetched = rng.randint(0, 9)
                    if fetched > 6:  # more rows than one event lists (here 3): pages before the outcome
                        items.extend(paged(req, finish, fetched, day=1 + r, size=3, fetched=fetched))
                    else:
                        listed = violations_summary(fetched, day=1 + r)
                        items.append(timed(synced(req, finish, fetched=fetched, summary=listed)))
                elif roll < 0.6:
                    items.append(timed(synced(req, finish, fetched=rng.randint(0, 9))))
                elif roll < 0.9:
                    kind = rng.choice([ErrorKind.TIMEOUT, ErrorKind.RATE_LIMITED, ErrorKind.NOT_FOUND])
                    retry = attempt_failed(req, minute + 0.2, kind=kind, first_minute=minute + 0.1)
                    items.append(timed(retry))
                    items.append(timed(failed(req, finish, kind=kind, message=f"{kind} in round {r}")))
                else:  # no outcome yet: the request waits for its second attempt
                    items.append(timed(attempt_failed(req, minute + 0.2, first_minute=minute + 0.1)))
    items.sort(key=lambda t: t.moment)
    # outcomes before their requests, and duplicates (republished beyond the window)
    for _ in range(len(items) // 20):
        i = rng.randrange(1, len(items))
        items.insert(rng.randrange(0, i), items[i])
    gone = dots[-1]
    event, moment = removed(gone, 100)
    items.append(timed(event, moment, f"rm-{gone}"))
    return items


# --- stream messages and table rows ---------------------------------------------------------


def delivered(items: Sequence[Timed | Event], first_seq: int = 1) -> list[Delivered]:
    """Stream messages as the feed hands them out: real headers and payloads, decoded."""
    out: list[Delivered] = []
    for offset, item in enumerate(items):
        t = item if isinstance(item, Timed) else timed(item)
        envelope = envelope_for(t.event, producer="test", occurred_at=t.moment, event_id_override=t.event_id)
        headers, data = envelope.to_headers(), encode(t.event)
        out.append(Delivered(first_seq + offset, subject_for(t.event), headers, data, decode(headers, data)))
    return out


def poison(seq: int, data: bytes = b"{not json", event_type: str = "sync_requested") -> Delivered:
    headers = {
        "Nats-Msg-Id": f"poison-{seq}",
        "Fmcsa-Type": event_type,
        "Fmcsa-Version": "1",
        "Fmcsa-Occurred-At": T0.isoformat(),
        "Fmcsa-Producer": "test",
    }
    return Delivered(seq, "fmcsa.evt.sync_requested.csa.1", headers, data, decode(headers, data))


def memory_rows(
    p: MemoryProjection, *, seq: int, events: int, rejected: int
) -> dict[str, list[dict[str, Any]]]:
    """The memory projection as the rows `StatusStore.dump` yields, table by table."""

    def rows(table: Table, values: Iterable[Any]) -> list[dict[str, Any]]:
        return [{c: getattr(v, c) for c in columns(table)} for v in values]

    return {
        POSITION.name: [{"id": 1, "seq": seq, "events": events, "rejected": rejected}],
        COMPANY.name: rows(COMPANY, sorted(p.companies.values(), key=lambda c: int(c.dot))),
        SOURCE.name: rows(SOURCE, sorted(p.pairs.values(), key=lambda q: (int(q.dot), q.source.value))),
        SYNC_LOG.name: rows(SYNC_LOG, sorted(p.entries.values(), key=lambda e: e.request_id)),
        DAILY.name: [
            {"day": day, "source": source, "succeeded": c.succeeded, "failed": c.failed}
            for (day, source), c in sorted(p.daily.items())
        ],
        TOTALS.name: rows(TOTALS, sorted(p.totals.values(), key=lambda t: t.scope)),
        CHANGE.name: rows(CHANGE, sorted(p.changes.values(), key=lambda c: c.position)),
        HISTORY.name: rows(
            HISTORY,
            sorted(p.history.values(), key=lambda q: (int(q.dot), q.source.value, q.subject, q.as_of)),
        ),
        CARRIER.name: rows(CARRIER, sorted(p.carriers.values(), key=lambda c: int(c.dot))),
        VIOLATION.name: rows(
            VIOLATION, [v for dot in sorted(p.violations, key=int) for v in p.violations[dot]]
        ),
        VIOLATION_PAGE.name: rows(VIOLATION_PAGE, [p.pages[k] for k in sorted(p.pages)]),
    }


async def store_rows(store: StatusStore) -> dict[str, list[dict[str, Any]]]:
    return {table.name: [row async for row in store.dump(table)] for table in TABLES}


def first_difference(
    want: dict[str, list[dict[str, Any]]], have: dict[str, list[dict[str, Any]]]
) -> str | None:
    for name in want:
        if len(want[name]) != len(have[name]):
            return f"{name}: {len(want[name])} rows wanted, {len(have[name])} found"
        for a, b in zip(want[name], have[name], strict=True):
            if a != b:
                diff = {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
                return f"{name}: {diff}"
    return None


# --- the real bus -----------------------------------------------------------------------------


async def publish_history(js: JetStreamContext, items: Sequence[Timed], *, in_flight: int = 64) -> int:
    """Publish in order of `items` (with bounded concurrency); a repeated item is republished under
    a new message id, as a republish beyond the duplicate window would be. Returns the last sequence."""
    seen: dict[str, int] = {}
    envelopes = []
    for t in items:
        n = seen.get(t.event_id, 0)
        seen[t.event_id] = n + 1
        eid = t.event_id if n == 0 else f"{t.event_id}#again{n}"
        envelopes.append(
            (t.event, envelope_for(t.event, producer="test", occurred_at=t.moment, event_id_override=eid))
        )
    bus = Bus(js, producer="test")
    last = 0
    for start in range(0, len(envelopes), in_flight):
        chunk = envelopes[start : start + in_flight]
        done = await asyncio.gather(*(bus.publish(event, envelope=envelope) for event, envelope in chunk))
        last = max([last, *(p.seq for p in done)])
    return last


async def publish_poison(js: JetStreamContext, *, data: bytes = b"{not json") -> int:
    headers = {
        "Nats-Msg-Id": f"poison-{uuid4()}",
        "Fmcsa-Type": "sync_requested",
        "Fmcsa-Version": "1",
        "Fmcsa-Occurred-At": T0.isoformat(),
        "Fmcsa-Producer": "test",
    }
    ack = await js.publish("fmcsa.evt.sync_requested.csa.1", data, headers=headers, stream=EVENTS_STREAM)
    return int(ack.seq)


async def read_stream(js: JetStreamContext, last_seq: int) -> list[Delivered]:
    """Every message of the event stream up to `last_seq`, decoded: what a fold must have seen."""
    out: list[Delivered] = []
    sub = await js.subscribe(
        EVENTS_WILDCARD, stream=EVENTS_STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    try:
        while not out or out[-1].seq < last_seq:
            msg = await sub.next_msg(timeout=10)
            seq = msg.metadata.sequence.stream
            out.append(Delivered(seq, msg.subject, msg.headers, msg.data, decode(msg.headers, msg.data)))
    finally:
        await sub.unsubscribe()
    return out


def expected_rows(messages: Sequence[Delivered], batch: int = 97) -> dict[str, list[dict[str, Any]]]:
    """The rows a correct projector holds after folding exactly these messages once each."""
    projection = MemoryProjection()
    rejected = 0
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        facts: list[Fact] = []
        for m in chunk:
            if isinstance(m.decoded, Decoded):
                envelope = m.decoded.envelope
                facts.append(Fact(m.decoded.event, envelope.event_id, envelope.occurred_at, m.seq))
            else:
                rejected += 1
        rejected += len(projection.apply(facts).rejected)
    last = messages[-1].seq if messages else 0
    return memory_rows(projection, seq=last, events=len(messages), rejected=rejected)
