"""What the scheduler keeps in the `fmcsa_state` bucket, for the gateway and for its own restarts.

Keys (documented in the README):
- `scheduler.status`: the `SchedulerStatus` document, rewritten every `status_interval_s` by a running
  replica (the latest heartbeat of any replica wins; `replica` and `heartbeat_at` say whose and when).
- `scheduler.checkpoint`: `{"through": <ISO time>, "activity_seq": <stream sequence>}`: the moment through
  which every due slot was handled by some replica, and the last request or outcome that replica had
  applied. It only moves forward (compare-and-set); a restart catches up the slots after `through` and
  replays requests and outcomes after `activity_seq`.
- `scheduler.backoff.<source>.<dot>`: the `Backoff` of a pair that is backing off; deleted when it ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fmcsa_events.identifiers import parse_dot, parse_source
from fmcsa_scheduler.domain import Backoff, from_ms, to_ms
from fmcsa_scheduler.outcomes import BackoffChange, BackoffCleared, Pair

STATUS_KEY = "scheduler.status"
CHECKPOINT_KEY = "scheduler.checkpoint"
BACKOFF_PREFIX = "scheduler.backoff"


class SourceStatus(BaseModel):
    """One source as the scheduler sees it."""

    model_config = ConfigDict(frozen=True)
    enabled: bool
    interval_minutes: int | None
    cron: str | None
    schedule_since: AwareDatetime | None = Field(description="When the current schedule took effect.")
    next_due_at: AwareDatetime | None = Field(description="The earliest next due time of any company.")
    next_slot_at: AwareDatetime | None = Field(description="Start of the next slot after now.")
    due: int = Field(description="Pairs that came due since the previous heartbeat.")
    published: int = Field(description="Requests published since this replica started.")
    in_flight: int = Field(description="Open requests this replica saw and no outcome or deadline ended yet.")
    backing_off: int = Field(description="Pairs held back by the back-off rule right now.")
    skipped: dict[str, int] = Field(
        description="Due slots not requested since this replica started, by reason."
    )


class SchedulerStatus(BaseModel):
    """The document under `scheduler.status`: the fields of the old worker status, and more."""

    model_config = ConfigDict(frozen=True)
    replica: str = Field(description="The replica that wrote this heartbeat.")
    enabled: bool = Field(description="False: the scheduler folds and ticks but publishes nothing.")
    running: bool = Field(description="False once the replica stopped (its last heartbeat says so).")
    ready: bool = Field(description="The registry is folded and the timetable built.")
    heartbeat_at: AwareDatetime = Field(description="When this was written; stale means no replica runs.")
    started_at: AwareDatetime = Field(description="When this replica built its timetable.")
    last_tick_at: AwareDatetime | None = Field(description="The last tick of this replica.")
    checkpoint_at: AwareDatetime | None = Field(description="Every slot due until then was handled.")
    companies: int = Field(description="Registered companies.")
    due: int = Field(description="Pairs that came due since the previous heartbeat, all sources.")
    in_flight: int = Field(description="Open requests, all sources (see SourceStatus.in_flight).")
    skipped: dict[str, int] = Field(description="Due slots not requested since this replica started.")
    rejected_schedules: int = Field(description="ScheduleChanged events refused (e.g. a bad cron).")
    undecodable_events: int = Field(description="Events this replica could not decode and skipped.")
    sources: dict[str, SourceStatus] = Field(
        description="Per source, keyed by source key (csa, violations, inspections, authority)."
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    through_ms: int
    activity_seq: int


class StateStore:
    """Reads and writes the scheduler's keys in `fmcsa_state`."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def read_checkpoint(self) -> Checkpoint | None:
        try:
            entry = await self._kv.get(CHECKPOINT_KEY)
        except KeyNotFoundError:
            return None
        return _checkpoint(entry.value)

    async def advance_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store `checkpoint` unless another replica already moved `through` further."""
        through_ms = checkpoint.through_ms
        value = json.dumps(
            {"through": from_ms(through_ms).isoformat(), "activity_seq": checkpoint.activity_seq}
        ).encode()
        for _ in range(3):
            try:
                entry = await self._kv.get(CHECKPOINT_KEY)
            except KeyNotFoundError:
                try:
                    await self._kv.create(CHECKPOINT_KEY, value)
                    return
                except KeyWrongLastSequenceError:
                    continue
            current = _checkpoint(entry.value)
            if current is not None and current.through_ms >= through_ms:
                return
            try:
                await self._kv.update(CHECKPOINT_KEY, value, last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue  # another replica wrote in between: read again

    async def load_backoffs(self) -> dict[Pair, Backoff]:
        """Every stored back-off (deleted ones excluded), read once at start."""
        watcher = await self._kv.watch(f"{BACKOFF_PREFIX}.>", ignore_deletes=True)
        backoffs: dict[Pair, Backoff] = {}
        try:
            async for entry in watcher:
                if entry is None:  # the watcher's marker: every current value has been delivered
                    break
                parsed = _parse_backoff(entry.key, entry.value)
                if parsed is not None:
                    backoffs[parsed[0]] = parsed[1]
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated
        return backoffs

    async def save_backoff(self, change: BackoffChange) -> None:
        source, dot = change.pair
        key = f"{BACKOFF_PREFIX}.{source}.{dot}"
        if isinstance(change, BackoffCleared):
            await self._kv.delete(key)
            return
        backoff = change.backoff
        value = {
            "failures": backoff.failures,
            "until": from_ms(backoff.until_ms).isoformat(),
            "seq": backoff.seq,
        }
        await self._kv.put(key, json.dumps({**value, "kind": backoff.kind}).encode())

    async def write_status(self, status: SchedulerStatus) -> None:
        await self._kv.put(STATUS_KEY, status.model_dump_json().encode())

    async def read_status(self) -> SchedulerStatus | None:
        try:
            entry = await self._kv.get(STATUS_KEY)
        except KeyNotFoundError:
            return None
        return SchedulerStatus.model_validate_json(entry.value or b"{}")


def _checkpoint(data: bytes | None) -> Checkpoint | None:
    try:
        raw = json.loads(data or b"{}")
        return Checkpoint(to_ms(datetime.fromisoformat(raw["through"])), int(raw.get("activity_seq", 0)))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: behave as on a first start (no catch-up) rather than guess


def _parse_backoff(key: str, data: bytes | None) -> tuple[Pair, Backoff] | None:
    try:
        _, _, source_text, dot_text = key.split(".", 3)
        pair = (parse_source(source_text), parse_dot(dot_text))
        raw = json.loads(data or b"{}")
        until = to_ms(datetime.fromisoformat(raw["until"]))
        return pair, Backoff(int(raw["failures"]), until, int(raw["seq"]), str(raw.get("kind", "")))
    except (ValueError, KeyError, TypeError):  # InvalidSource and InvalidDotNumber are ValueErrors
        return None  # a damaged record is ignored: the pair simply is not backing off
