"""What the scheduler keeps in the `fmcsa_state` bucket, for the gateway and for its own restarts.

Keys (documented in the README):
- `scheduler.status`: the `SchedulerStatus` document (`fmcsa_events.scheduler_status`, shared with the
  gateway that reads it), rewritten every `status_interval_s` by a running
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

from fmcsa_events.identifiers import parse_dot, parse_source
from fmcsa_events.scheduler_status import SCHEDULER_STATUS_KEY, SchedulerStatus
from fmcsa_scheduler.domain import Backoff, from_ms, to_ms
from fmcsa_scheduler.outcomes import BackoffChange, BackoffCleared, Pair

STATUS_KEY = SCHEDULER_STATUS_KEY
CHECKPOINT_KEY = "scheduler.checkpoint"
BACKOFF_PREFIX = "scheduler.backoff"


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
        await self._kv.put(STATUS_KEY, status.encode())

    async def read_status(self) -> SchedulerStatus | None:
        try:
            entry = await self._kv.get(STATUS_KEY)
        except KeyNotFoundError:
            return None
        return SchedulerStatus.decode(entry.value)


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
