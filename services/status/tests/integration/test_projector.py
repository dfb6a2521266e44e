"""The projector on a real nats-server: events published with the Bus are folded, the position
persists, a restart resumes from position + 1, poison goes to FMCSA_DLQ and the position moves on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from status_support import (
    busy_history,
    expected_rows,
    failed,
    first_difference,
    publish_history,
    publish_poison,
    read_stream,
    registered,
    request,
    store_rows,
    synced,
    timed,
)

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.topology import DLQ_STREAM, Topology, declare
from fmcsa_status.handlers import Projector
from fmcsa_status.store import StatusStore
from fmcsa_status_view.query import StatusView

CSA = SourceKey.CSA


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


async def run_projector(nc: Client, url: str) -> tuple[Projector, StatusStore]:
    store = await StatusStore.connect(url)
    projector = Projector(nc.jetstream(), store, batch_size=50, batch_wait_s=0.02)
    projector.start()
    return projector, store


async def test_events_are_folded_and_a_restart_resumes_after_the_position(
    nc: Client, database_url: str, wait_until: Any
) -> None:
    js = nc.jetstream()
    history = busy_history(seed=11, companies=6, rounds=4)
    half = len(history) // 2
    view = StatusView(database_url)
    projector, store = await run_projector(nc, database_url)
    try:
        first = await publish_history(js, history[:half])
        await wait_until(lambda: _at(view, first), what=f"position {first}")
    finally:
        await projector.stop(grace_s=5)
        await store.close()
    assert await view.applied_position() == first
    last = await publish_history(js, history[half:])  # while nothing folds
    projector, store = await run_projector(nc, database_url)
    try:
        await wait_until(lambda: _at(view, last), what=f"position {last}")
        want = expected_rows(await read_stream(js, last))
        assert first_difference(want, await store_rows(store)) is None  # each message folded once
    finally:
        await projector.stop(grace_s=5)
        await store.close()
        await view.close()


async def test_poison_goes_to_the_dead_letter_stream_and_the_position_moves_on(
    nc: Client, tmp_path: Any, wait_until: Any
) -> None:
    js = nc.jetstream()
    url = f"sqlite:///{tmp_path}/status.sqlite3"
    req = request("2847193", CSA, 0)
    conflicting = synced(req, 2)  # the request already ended in failure: impossible
    await publish_history(js, [timed(req), timed(failed(req, 1))])
    not_json = await publish_poison(js)
    await publish_history(js, [timed(conflicting, eid="another-outcome-id")])
    event, moment = registered("2847193", 3)
    last = await publish_history(js, [timed(event, moment, "reg")])
    view = StatusView(url)
    projector, store = await run_projector(nc, url)
    try:
        await wait_until(lambda: _at(view, last), what=f"position {last}")
    finally:
        await projector.stop(grace_s=5)
        await store.close()
    summary = await view.summary()
    assert (summary.position, summary.events, summary.rejected) == (last, last, 2)
    status = await view.company_status("2847193")
    assert status is not None
    assert status.name == "Carrier 2847193"
    assert status.sources[CSA].state == "failed"  # the impossible success changed nothing
    letter = await js.get_last_msg(DLQ_STREAM, "fmcsa.dlq.status.not_json")
    assert letter.headers is not None
    assert letter.headers["Fmcsa-Dlq-Seq"] == str(not_json)
    assert letter.data == b"{not json"
    letter = await js.get_last_msg(DLQ_STREAM, "fmcsa.dlq.status.conflicting_outcome")
    assert letter.headers is not None
    assert "already ended failed" in letter.headers["Fmcsa-Dlq-Detail"]
    assert json.loads(letter.data)["request_id"] == str(req.request_id)
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 2
    await view.close()


async def _at(view: StatusView, seq: int) -> bool:
    return await view.applied_position() >= seq
