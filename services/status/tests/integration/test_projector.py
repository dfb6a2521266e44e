"""The projector on a real nats-server: events published with the Bus are folded, the position
persists, a restart resumes from position + 1, poison goes to FMCSA_DLQ and the position moves on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from status_support import (
    at,
    authority_summary,
    busy_history,
    changed,
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
from fmcsa_events.models import ChangeKind
from fmcsa_events.topology import DLQ_STREAM, Topology, declare
from fmcsa_status.handlers import Projector
from fmcsa_status.store import StatusStore
from fmcsa_status_view.query import StatusView
from fmcsa_status_view.syncstatus import sync_status_block

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


async def test_the_authority_source_is_folded_into_status_feed_and_insurance_history(
    nc: Client, database_url: str, wait_until: Any
) -> None:
    js = nc.jetstream()
    dot, auth = "2847193", SourceKey.AUTHORITY
    event, moment = registered(dot, 0)
    first, second = request(dot, auth, 1), request(dot, auth, 10)
    filing = {
        "type": "BIPD", "form": "91X", "insurer": "Acme Casualty", "policy_number": "P-1",
        "coverage": 1_000_000, "effective": "2025-01-01", "cancellation": None,
    }  # fmt: skip
    cancelling = {**filing, "cancellation": "2026-12-23"}
    last = await publish_history(
        js,
        [
            timed(event, moment, "reg"),
            timed(first),
            timed(synced(first, 2, summary=authority_summary(1_000_000), as_of=datetime(2026, 11, 1))),
            timed(second),
            timed(
                changed(
                    second,
                    11,
                    kind=ChangeKind.INSURANCE_CANCELLATION_PENDING,
                    subject="bipd_p_1",
                    before=filing,
                    after=cancelling,
                )
            ),
            timed(
                changed(
                    second,
                    11,
                    kind=ChangeKind.INSURANCE_BELOW_REQUIRED,
                    subject="bipd",
                    before={"on_file": 1_000_000, "required": 750_000},
                    after={"on_file": 500_000, "required": 750_000},
                )
            ),
            timed(
                synced(
                    second,
                    12,
                    summary=authority_summary(500_000, next_cancellation="2026-12-23"),
                    as_of=datetime(2026, 11, 2),
                )
            ),
            timed(failed(request(dot, CSA, 13), 14)),
        ],
    )
    view = StatusView(database_url)
    projector, store = await run_projector(nc, database_url)
    try:
        await wait_until(lambda: _at(view, last), what=f"position {last}")
    finally:
        await projector.stop(grace_s=5)
        await store.close()
    try:
        status = await view.company_status(dot)
        assert status is not None
        assert status.sources[auth].state == "succeeded"
        assert status.sources[auth].last_success_at == at(12)
        assert sync_status_block(status)["authorityLastSync"] == "2026-11-23T06:12:00.000Z"
        log = await view.sync_log(dot=dot, source=auth)
        assert [e.request_id for e in log.items] == [str(second.request_id), str(first.request_id)]
        feed = await view.changes(source=auth)
        assert [(e.kind, e.subject) for e in feed.items] == [
            ("insurance_below_required", "bipd"),
            ("insurance_cancellation_pending", "bipd_p_1"),
        ]
        assert (feed.items[1].before, feed.items[1].after) == (filing, cancelling)
        pending = await view.changes(kind="insurance_cancellation_pending")
        assert [e.dot for e in pending.items] == [dot]
        history = await view.history(dot, source=auth)
        assert [(s.subject, [p.values for p in s.points]) for s in history] == [
            (
                "insurance",
                [
                    {"bipd_on_file": 1_000_000.0, "bipd_required": 750_000.0},
                    {"bipd_on_file": 500_000.0, "bipd_required": 750_000.0},
                ],
            )
        ]
    finally:
        await view.close()
