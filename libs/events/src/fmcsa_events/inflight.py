"""In-flight markers: at most one open request per (company, source), held in the `fmcsa_inflight` bucket.

Whoever publishes a `SyncRequested` (the scheduler, the gateway's manual trigger) first takes the marker
under `inflight_key(source, dot)` with a create-if-absent write, then publishes; the marker is released
when the request's outcome arrives, and a marker whose deadline has passed may be taken over. The
bucket's TTL (`Topology.inflight_ttl_s`) is the safety net when nobody releases a marker.

Every writer uses this module, so the key format, the value and the take-over rule are the same for all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from fmcsa_events.identifiers import parse_dot, parse_source
from fmcsa_events.models import SyncRequested, Trigger


def inflight_key(source: str, dot: str) -> str:
    """The marker's key, `<source>.<dot>` (e.g. `csa.2847193`); refuses a bad source or DOT number."""
    return f"{parse_source(source)}.{parse_dot(dot)}"


class InflightMarker(BaseModel):
    """The value of a marker: which request holds the (company, source) and until when."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    request_id: UUID
    trigger: Trigger
    requested_by: str = Field(max_length=200)
    taken_at: AwareDatetime
    deadline: AwareDatetime
    slot: AwareDatetime | None = None

    @classmethod
    def for_request(cls, request: SyncRequested, *, taken_at: datetime) -> InflightMarker:
        return cls(
            request_id=request.request_id,
            trigger=request.trigger,
            requested_by=request.requested_by,
            taken_at=taken_at,
            deadline=request.deadline,
            slot=request.slot,
        )

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes | None) -> InflightMarker | None:
        """The marker in `data`, or None when it cannot be read (such a marker counts as stale)."""
        if not data:
            return None
        try:
            return cls.model_validate_json(data)
        except ValidationError:
            return None

    def is_stale(self, now: datetime) -> bool:
        """A marker whose deadline has passed no longer blocks a new request."""
        return now >= self.deadline


@dataclass(frozen=True, slots=True)
class Taken:
    """The caller now holds the marker at `revision`; `replaced` is the stale marker it took over."""

    revision: int
    replaced: InflightMarker | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """Another request holds a live marker (`marker`); the caller must not publish."""

    marker: InflightMarker
    revision: int


async def take(kv: KeyValue, marker: InflightMarker, *, source: str, dot: str, now: datetime) -> Taken | Held:
    """Take the marker of (source, dot) for `marker.request_id`: create it if absent, or take over a marker
    that is stale (deadline passed, or unreadable) with a compare-and-set on its revision.

    Returns `Held` when a live marker of any request (this one included) is there, or when another
    writer won a race for a stale one. Raises only for connection trouble (nats errors, timeouts).
    """
    key = inflight_key(source, dot)
    value = marker.encode()
    for _ in range(3):  # a marker can vanish or change between our reads; a few rounds settle it
        try:
            return Taken(await kv.create(key, value))
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            continue  # released or expired between our create and get: try to create again
        held = InflightMarker.decode(entry.value)
        revision = entry.revision or 0
        if held is not None and not held.is_stale(now):
            return Held(held, revision)
        try:
            return Taken(await kv.update(key, value, last=revision), replaced=held)
        except KeyWrongLastSequenceError:
            continue
    entry = await kv.get(key)
    current = InflightMarker.decode(entry.value)
    if current is None:  # still unreadable after several rounds: another writer keeps rewriting it
        raise RuntimeError(f"in-flight marker {key} keeps changing and cannot be read")
    return Held(current, entry.revision or 0)


async def release(kv: KeyValue, *, source: str, dot: str, request_id: UUID) -> bool:
    """Delete the marker of (source, dot) if, and only if, it still belongs to `request_id`.

    Idempotent: a marker already gone, or now held by another request, is left alone (returns False).
    The delete is conditional on the revision read, so a marker taken in between is never removed.
    """
    key = inflight_key(source, dot)
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return False
    held = InflightMarker.decode(entry.value)
    if held is None or held.request_id != request_id:
        return False
    try:
        await kv.delete(key, last=entry.revision)
    except BadRequestError:  # the revision moved on: someone else released or re-took it
        return False
    return True
