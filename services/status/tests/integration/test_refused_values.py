"""Nothing in one event stops the projector (issue 20): an event that decodes but whose value the
database refuses is isolated by bisecting its batch, dead-lettered as `store_refused` and passed; an
event with a NUL in a name (an old or forged one, published as raw bytes) is refused on decode. The
events after both are folded, the position moves past them, and a rebuild folds the same rows.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from status_support import (
    T0,
    busy_history,
    changed,
    delivered,
    expected_rows,
    first_difference,
    publish_history,
    read_stream,
    registered,
    request,
    store_rows,
    synced,
    timed,
)

from fmcsa_events.consume import Delivered
from fmcsa_events.decoder import Undecodable, UndecodableReason
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Event, SyncRequested
from fmcsa_events.topology import DLQ_STREAM, EVENTS_STREAM, Topology, declare
from fmcsa_status.handlers import Projector
from fmcsa_status.rebuild import rebuild
from fmcsa_status.settings import Settings
from fmcsa_status.store import STORE_REFUSED, Applied, StatusStore
from fmcsa_status_view.query import StatusView

END_OF_TIME = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12)))
TOO_BIG = 2**64
"""An attempts count the model takes (no upper bound) and no database column holds: PostgreSQL's
driver refuses it for an integer column, SQLite's for any integer."""


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


async def publish_raw_nul_name(js: JetStreamContext, dot: str) -> int:
    """A CompanyRegistered whose name holds U+0000, as raw bytes: what an event older than the
    models' validator, or a forged one, looks like on the bus."""
    headers = {
        "Nats-Msg-Id": f"nul-{uuid4()}",
        "Fmcsa-Type": "company_registered",
        "Fmcsa-Version": "1",
        "Fmcsa-Occurred-At": T0.isoformat(),
        "Fmcsa-Producer": "test",
    }
    data = json.dumps({"dot": dot, "name": "Bad\u0000Name", "registered_by": "old"}).encode()
    assert b"\\u0000" in data
    ack = await js.publish(f"fmcsa.evt.company_registered.{dot}", data, headers=headers, stream=EVENTS_STREAM)
    return int(ack.seq)


async def test_a_refused_value_is_dead_lettered_and_folding_goes_on_live_and_in_a_rebuild(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path, wait_until: Any
) -> None:
    js = nc.jetstream()
    history = busy_history(seed=31, companies=5, rounds=3)
    req = request("1000999", SourceKey.CSA, 1)
    bad = synced(req, 2).model_copy(update={"attempts": TOO_BIG})  # decodes; the database refuses it
    store = await StatusStore.connect(database_url)
    projector = Projector(js, store, batch_size=64, batch_wait_s=0.05)
    view = StatusView(database_url)
    try:
        # everything is published before the projector starts, so the bad events sit inside batches
        await publish_history(js, [*history[:40], timed(req)])
        bad_seq = await publish_history(js, [timed(bad)])
        nul_seq = await publish_raw_nul_name(js, "1000999")
        event, moment = registered("1000998", 3, name="After The Bad Ones")
        await publish_history(js, [*history[40:80], timed(event, moment, "reg-after")])
        last = await publish_history(js, history[80:])
        projector.start()
        await wait_until(lambda: _at(view, last), what=f"position {last}", within_s=60)

        summary = await view.summary()
        assert (summary.position, summary.events, summary.rejected) == (last, last, 2)
        after = await view.company_status("1000998")
        assert after is not None
        assert after.name == "After The Bad Ones"  # folded after both

        letter = await js.get_last_msg(DLQ_STREAM, f"fmcsa.dlq.status.{STORE_REFUSED}")
        assert letter.headers is not None
        assert letter.headers["Fmcsa-Dlq-Seq"] == str(bad_seq)
        assert str(TOO_BIG) in letter.data.decode()  # the original payload, to fix and republish
        assert letter.headers["Fmcsa-Dlq-Detail"]  # the database's reason
        assert "INSERT" not in letter.headers["Fmcsa-Dlq-Detail"]  # not the statement or its rows
        letter = await js.get_last_msg(DLQ_STREAM, "fmcsa.dlq.status.invalid")
        assert letter.headers is not None
        assert letter.headers["Fmcsa-Dlq-Seq"] == str(nul_seq)
        assert "control character (U+0000)" in letter.headers["Fmcsa-Dlq-Detail"]
        assert (await js.stream_info(DLQ_STREAM)).state.messages == 2

        # the rows are exactly those of every other message, each folded once
        messages = [_refused(m) if m.seq == bad_seq else m for m in await read_stream(js, last)]
        want = expected_rows(messages)
        assert first_difference(want, await store_rows(store)) is None

        settings = Settings(nats_url=fresh_nats_url, data_dir=tmp_path, database_url=database_url)
        same = await rebuild(settings, verify=True, out=io.StringIO(), report=io.StringIO(), nc=nc)
        assert (same.different_rows, same.position, same.rejected) == (0, last, 2)
    finally:
        await projector.stop(grace_s=5)
        await store.close()
    # `./fmcsa rebuild-status`: a store rebuilt from the stream and swapped in holds the same rows
    done = await rebuild(settings, out=io.StringIO(), report=io.StringIO(), nc=nc)
    assert (done.swapped, done.position, done.rejected) == (True, last, 2)
    rebuilt = await StatusStore.connect(database_url)
    try:
        assert first_difference(want, await store_rows(rebuilt)) is None
    finally:
        await rebuilt.close()
        await view.close()
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 2  # REPLAY: nothing dead-lettered again


def too_big(req: SyncRequested) -> Event:
    """An outcome whose attempts count the database refuses (the write fails)."""
    return synced(req, 2).model_copy(update={"attempts": TOO_BIG})


def beyond_time(req: SyncRequested) -> Event:
    """A change observed at a time with no UTC value (year 10000): the fold itself raises."""
    return changed(req, 2).model_copy(update={"observed_at": END_OF_TIME})


@pytest.mark.parametrize("refused_event", [too_big, beyond_time])
async def test_a_batch_with_several_refused_values_keeps_every_good_event(
    database_url: str, refused_event: Callable[[SyncRequested], Event]
) -> None:
    """The bisection itself, on the store: three refused events at the edges and in the middle of
    what is folded in two batches (PostgreSQL writes the first while it folds the second); each is
    dead-lettered once, in stream order, and every other event is folded."""
    items = list(busy_history(seed=32, companies=3, rounds=2))
    for index in (0, len(items) // 2, len(items) - 1):
        req = request(f"10009{index:02d}", SourceKey.CSA, 1)
        items.insert(index, timed(refused_event(req), req.requested_at))
    messages = delivered(items)
    refused = [m.seq for m in messages if str(TOO_BIG).encode() in m.data or b"9999-12-31" in m.data]
    assert len(refused) == 3
    letters: list[tuple[int, str]] = []

    async def dead_letter(message: Delivered, reason: str, detail: str) -> None:
        letters.append((message.seq, reason))

    store = await StatusStore.connect(database_url)
    try:
        third = len(messages) // 3
        first = await store.apply(messages[:third], believed=0, dead_letter=dead_letter)
        assert isinstance(first, Applied)
        await store.apply(messages[third:], believed=first.position, dead_letter=dead_letter)
        assert await store.flush() is None  # PostgreSQL: a write in flight is bisected here
        assert letters == [(seq, STORE_REFUSED) for seq in refused]
        assert await store.position() == len(messages)
        want = expected_rows([_refused(m) if m.seq in refused else m for m in messages])
        assert first_difference(want, await store_rows(store)) is None
    finally:
        await store.close()


def _refused(message: Delivered) -> Delivered:
    """The message as the projector must have treated it: folded nothing, counted as rejected."""
    return dataclasses.replace(message, decoded=Undecodable(UndecodableReason.INVALID, "refused"))


async def _at(view: StatusView, seq: int) -> bool:
    return await view.applied_position() >= seq
