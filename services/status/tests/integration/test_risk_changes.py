"""Risk changes on a real nats-server and database: a success that turns a carrier from yellow to red
makes the live projector write one outbox row, the publisher publishes it as one `risk_changed` fact,
the projector folds that fact into the change feed; a restart, a republish and a rebuild publish
nothing more, and `rebuild --verify` finds no difference."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from status_support import publish_history, request, synced, timed

from fmcsa_events.decoder import Undecodable
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_events.reader import read_stream
from fmcsa_events.topology import Topology, declare
from fmcsa_status.app import StatusWorker
from fmcsa_status.rebuild import rebuild
from fmcsa_status.settings import Settings
from fmcsa_status.store import StatusStore
from fmcsa_status_view.query import StatusView

DOT = "2847193"
YELLOW = {
    "basics": [{"id": 11, "name": "Unsafe Driving", "percentile": "72", "alert": True}],
    "alerts": [11],
    "legal_name": "Acme Freight Lines Inc",
    "allowed_to_operate": True,
    "safety_rating": "satisfactory",
    "authority": {"common": "active", "contract": "none", "broker": "none"},
}
RED = {**YELLOW, "safety_rating": "unsatisfactory"}
SUBJECT = f"fmcsa.evt.carrier_data_changed.*.{DOT}"


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


class Live:
    """The status service's worker (`StatusWorker`: the projector and the risk publisher over one store)."""

    def __init__(self, nc: Client, settings: Settings) -> None:
        self.nc, self.worker = nc, StatusWorker(settings)

    async def __aenter__(self) -> Live:
        await self.worker.start(self.nc)
        assert self.worker.store is not None
        assert self.worker.publisher is not None
        self.store, self.publisher = self.worker.store, self.worker.publisher
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.worker.stop(grace_s=5)


async def risk_facts(js: JetStreamContext) -> list[tuple[str, CarrierDataChanged]]:
    """Every change fact of the carrier on the stream with its event id, risk changes only."""
    found = []
    async for message in read_stream(js, subject=SUBJECT, idle_timeout_s=0.5):
        decoded = message.decoded
        assert not isinstance(decoded, Undecodable)
        event = decoded.event
        assert isinstance(event, CarrierDataChanged)
        if event.kind == ChangeKind.RISK_CHANGED:
            found.append((decoded.envelope.event_id, event))
    return found


async def test_yellow_to_red_publishes_one_risk_fact_the_feed_shows_and_nothing_repeats_it(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path, wait_until: Any
) -> None:
    js = nc.jetstream()
    view = StatusView(database_url)
    settings = Settings(
        nats_url=fresh_nats_url,
        data_dir=tmp_path,
        database_url=database_url,
        batch_size=16,
        batch_wait_ms=10,
        snapshot_interval_s=0,
    )
    first, second = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.CSA, 10)
    try:
        async with Live(nc, settings) as live:
            last = await publish_history(js, [timed(e) for e in (first, synced(first, 1, summary=YELLOW))])
            await wait_until(lambda: _at(view, last), what=f"position {last}")
            assert (await view.carrier(DOT)).risk == "yellow"  # type: ignore[union-attr]
            assert await risk_facts(js) == []  # the first light is a baseline

            await publish_history(js, [timed(e) for e in (second, synced(second, 11, summary=RED))])
            await wait_until(lambda: _feed_has_risk(view), what="the risk change in the feed")
            [(event_id, fact)] = await risk_facts(js)
            assert event_id == f"change:{second.request_id}:risk_changed:red"
            assert (fact.source, fact.request_id, fact.subject) == (SourceKey.CSA, second.request_id, "red")
            assert isinstance(fact.before, dict)
            assert isinstance(fact.after, dict)
            assert (fact.before["light"], fact.after["light"]) == ("yellow", "red")
            assert await live.store.pending_risks() == []  # deleted after its PubAck

            # a crash between the PubAck and the delete: the row is published again, JetStream drops it
            db_rows = [(event_id, 0, 0, fact.model_dump_json())]
            await live.store.adopt_outbox(db_rows)
            await live.publisher.publish_pending()
            assert len(await risk_facts(js)) == 1

        [feed] = (await view.changes(dot=DOT, kind="risk_changed")).items
        assert (feed.event_id, feed.subject, feed.source) == (event_id, "red", "csa")

        async with Live(nc, settings):  # a restart: resumes at its position, publishes nothing
            other = request("44", SourceKey.CSA, 20)
            last = await publish_history(js, [timed(e) for e in (other, synced(other, 21, summary=RED))])
            await wait_until(lambda: _at(view, last), what=f"position {last}")
        assert len(await risk_facts(js)) == 1

        held = await StatusStore.connect(database_url)  # a row the publisher has not sent yet
        await held.adopt_outbox([("change:unsent", 1, 0, fact.model_dump_json())])
        await held.close()
        swapped = await rebuild(settings, out=io.StringIO(), nc=nc, from_scratch=True)
        assert swapped.swapped
        held = await StatusStore.connect(database_url)  # the swapped-in store carries it
        assert [e for e, _ in await held.pending_risks()] == ["change:unsent"]
        await held.risk_published("change:unsent")
        await held.close()
        same = await rebuild(settings, verify=True, out=io.StringIO(), report=io.StringIO(), nc=nc)
        assert same.different_rows == 0
        assert len(await risk_facts(js)) == 1  # a replay publishes nothing
        assert [c.event_id for c in (await view.changes(dot=DOT, kind="risk_changed")).items] == [event_id]
    finally:
        await view.close()


async def _at(view: StatusView, seq: int) -> bool:
    return await view.applied_position() >= seq


async def _feed_has_risk(view: StatusView) -> bool:
    return bool((await view.changes(dot=DOT, kind="risk_changed")).items)
