"""kill -9 of the projector process, again and again while events arrive: when it has caught up,
every message was folded exactly once (nothing applied twice, nothing skipped)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import nats
from status_support import (
    busy_history,
    expected_rows,
    first_difference,
    publish_history,
    publish_poison,
    read_stream,
    store_rows,
)

from fmcsa_embedded import Child
from fmcsa_events.topology import EVENTS_STREAM, Topology, declare
from fmcsa_status.store import StatusStore
from fmcsa_status_view.query import StatusView

KILLS = 5


async def test_kill_9_many_times_while_folding_loses_and_repeats_nothing(
    fresh_nats_url: str, tmp_path: Path, wait_until: Any
) -> None:
    nc = await nats.connect(fresh_nats_url)
    js = nc.jetstream()
    await declare(js, Topology())
    url = f"sqlite:///{tmp_path}/status.sqlite3"
    env = {
        "FMCSA_NATS_URL": fresh_nats_url,
        "FMCSA_DATA_DIR": str(tmp_path),
        "FMCSA_STATUS_DATABASE_URL": url,
        "FMCSA_STATUS_HTTP_PORT": "0",
        "FMCSA_STATUS_BATCH_SIZE": "40",  # many small commits: kills land inside and between batches
        "FMCSA_STATUS_BATCH_WAIT_MS": "5",
        "FMCSA_LOG_JSON": "true",
    }
    child = Child("status", [sys.executable, "-m", "fmcsa_status"], env, log_path=tmp_path / "status.log")
    view = StatusView(url)
    history = busy_history(seed=5, companies=40, rounds=8)  # ~1,900 requests and outcomes, repeats
    chunks = [history[i : i + 300] for i in range(0, len(history), 300)]
    kills = 0
    try:
        child.start()
        publishing = asyncio.create_task(_publish(js, chunks))
        seen = 0
        while kills < KILLS:
            # kill as soon as it has folded something new: it is busy, mid-batch or between batches
            await wait_until(lambda seen=seen: _beyond(view, seen), what=f"progress past {seen}", within_s=30)
            seen = await view.applied_position()
            child.kill()
            kills += 1
            child.start()
        last = await publishing
        await wait_until(lambda: _beyond(view, last - 1), what=f"position {last}", within_s=30)
        assert child.stop() == 0  # SIGTERM: a graceful stop
        assert kills == KILLS
        want = expected_rows(await read_stream(js, last))
        store = await StatusStore.connect(url)
        try:
            have = await store_rows(store)
        finally:
            await store.close()
        assert first_difference(want, have) is None
        assert have["status_position"] == [{"id": 1, "seq": last, "events": last, "rejected": 2}]
        assert (await js.stream_info(EVENTS_STREAM)).state.last_seq == last
    finally:
        child.stop()
        await view.close()
        await nc.drain()


async def _publish(js: nats.js.JetStreamContext, chunks: list[list[object]]) -> int:
    last = 0
    for n, chunk in enumerate(chunks):
        last = await publish_history(js, chunk)
        if n in (1, 3):
            last = await publish_poison(js)
    return last


async def _beyond(view: StatusView, seq: int) -> bool:
    return await view.applied_position() > seq
