"""The carrier record on a real nats-server and database: the projector folds the sources' summaries
into `status_carrier` and `status_violation`, `StatusView` reads them (the record, violation pages with
filters, search by name, DOT and docket, the risk filter), and `rebuild --verify` covers both tables."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from status_support import (
    authority_summary,
    busy_history,
    publish_history,
    request,
    synced,
    timed,
    violations_summary,
)

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.topology import Topology, declare
from fmcsa_status.handlers import Projector
from fmcsa_status.rebuild import rebuild
from fmcsa_status.settings import Settings
from fmcsa_status.store import StatusStore
from fmcsa_status_view.database import open_database
from fmcsa_status_view.location import Location
from fmcsa_status_view.query import StatusView

DOT = "2847193"
CSA = {
    "basics": [{"id": 11, "name": "Unsafe Driving", "percentile": "72", "alert": True}],
    "alerts": [11],
    "legal_name": "Acme Freight Lines Inc",
    "dba_name": None,
    "status_code": "A",
    "address": {"street": "4410 W INDUSTRIAL PKWY", "city": "DES MOINES", "state": "IA", "zip": "50321"},
    "allowed_to_operate": True,
    "safety_rating": "satisfactory",
    "authority": {"common": "active", "contract": "none", "broker": "none"},
}


@pytest.fixture
async def nc(fresh_nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(fresh_nats_url)
    await declare(client.jetstream(), Topology())
    yield client
    await client.drain()


async def test_the_projector_folds_the_record_the_view_reads_it_and_verify_covers_it(
    nc: Client, fresh_nats_url: str, database_url: str, tmp_path: Path, wait_until: Any
) -> None:
    js = nc.jetstream()
    csa, violations = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.VIOLATIONS, 0)
    authority, other = request(DOT, SourceKey.AUTHORITY, 0), request("44", SourceKey.CSA, 0)
    history = [
        timed(e)
        for e in (
            csa,
            synced(csa, 1, summary=CSA),
            violations,
            synced(violations, 2, summary=violations_summary(7)),
            authority,
            synced(authority, 3, summary=authority_summary(1_000_000, next_cancellation=None)),
            other,
            synced(other, 4, summary={**CSA, "legal_name": "Bolt Carriers", "alerts": []}),
        )
    ] + busy_history(seed=5, companies=4, rounds=3)
    store = await StatusStore.connect(database_url)
    projector = Projector(js, store, batch_size=16, batch_wait_s=0.01)
    projector.start()
    view = StatusView(database_url)
    try:
        last = await publish_history(js, history)
        await wait_until(lambda: _at(view, last), what=f"position {last}")
        record = await view.carrier(DOT)
        assert record is not None
        assert record.legal_name == "Acme Freight Lines Inc"
        assert record.risk == "yellow"  # the BASIC alert
        assert record.violations is not None
        assert record.violations["listed"] == 7
        assert await view.carrier("99") is None

        first = await view.carrier_violations(DOT, limit=4)
        rest = await view.carrier_violations(DOT, limit=4, cursor=first.next_cursor)
        assert [v.seq for v in first.items + rest.items] == list(range(7))
        assert rest.next_cursor is None
        oos = await view.carrier_violations(DOT, oos=True)
        assert [v.inspection for v in oos.items] == ["906", "903", "900"]
        maintenance = await view.carrier_violations(DOT, basic="vehicle_maintenance", since=date(2026, 10, 3))
        assert {v.basic for v in maintenance.items} == {"vehicle_maintenance"}
        assert all(v.inspected_on >= "2026-10-03" for v in maintenance.items)

        assert [c.dot for c in (await view.search_carriers(q="acme")).items] == [DOT]
        assert [c.dot for c in (await view.search_carriers(q="ACME FREIGHT L")).items] == [DOT]
        assert [c.dot for c in (await view.search_carriers(q="mc-123456")).items] == [DOT]
        assert [c.dot for c in (await view.search_carriers(q="44")).items] == ["44"]
        assert [c.dot for c in (await view.search_carriers(q="a%")).items] == []  # no wildcard
        assert DOT in [c.dot for c in (await view.search_carriers(risk="yellow", limit=500)).items]
        assert "44" not in [c.dot for c in (await view.search_carriers(risk="yellow", limit=500)).items]

        settings = Settings(nats_url=fresh_nats_url, data_dir=tmp_path, database_url=database_url)
        same = await rebuild(settings, verify=True, out=io.StringIO(), report=io.StringIO(), nc=nc)
        assert (same.different_rows, same.position) == (0, last)
        await projector.stop(grace_s=5)
        db = open_database(Location(database_url).live_url(), writer=True)
        async with db.transaction() as session:  # wrong rows, as a bug would leave them
            await session.execute(f"UPDATE status_carrier SET risk = 'green' WHERE dot = {DOT}")
            await session.execute(f"DELETE FROM status_violation WHERE dot = {DOT} AND seq = 6")
        await db.dispose()
        report = io.StringIO()
        found = await rebuild(settings, verify=True, out=io.StringIO(), report=report, nc=nc)
        text = report.getvalue()
        assert f"status_carrier ({DOT},): risk live='green' replay='yellow'" in text
        assert f"status_violation ({DOT}, 6): only in the replay" in text
        assert found.different_rows == 2
    finally:
        await projector.stop(grace_s=5)
        await store.close()
        await view.close()


async def _at(view: StatusView, seq: int) -> bool:
    return await view.applied_position() >= seq
