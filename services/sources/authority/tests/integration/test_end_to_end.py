"""The proof issue 22 asks for, as `./fmcsa up` runs it: the sandbox and the authority service as their own
processes on a real nats-server (the launcher behind `up`, its bus user, the sandbox's URLs and keys).
Each scripted DOT is synced (a baseline), the sandbox is bumped, each is synced again and its change kind
arrives on the bus with before and after; one more bump lifts the OOS order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import nats
import pytest
from nats.aio.client import Client

from fmcsa_cli.launcher import Launcher
from fmcsa_embedded import free_port
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, SourceFailed, SourceSynced, SyncRequested, Trigger
from fmcsa_events.reader import read_stream
from fmcsa_events.topology import Topology, declare

pytestmark = pytest.mark.system

WaitUntil = Callable[..., Awaitable[None]]
SCRIPTED = {
    "99700005": ("authority_status_changed", "common", "active", "inactive"),
    "99700006": ("authority_revocation_pending", "common", "active", "pending_revocation"),
    "99700007": ("docket_added", "ff990702", None, "FF990702"),
    "99700008": ("oos_order_issued", "oos_order", None, dict),
    "99700009": ("insurance_filing_added", "cargo_", None, dict),
    "99700010": ("insurance_cancellation_pending", "bipd_", dict, dict),
    "99700011": ("insurance_cancelled", "bipd_", dict, dict),
    "99700012": (
        "insurance_below_required",
        "bipd",
        {"on_file": 750_000, "required": 750_000},
        {"on_file": 500_000, "required": 750_000},
    ),
}


def request(dot: str) -> SyncRequested:
    now = datetime.now(UTC)
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source=SourceKey.AUTHORITY,
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now,
        deadline=now + timedelta(minutes=5),
    )


@contextlib.asynccontextmanager
async def launched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra_env: dict[str, str]
) -> AsyncIterator[tuple[Launcher, Client]]:
    """The sandbox and the authority source as `./fmcsa up` starts them (nothing of this environment's
    FMCSA_ settings but the test database), `extra_env` added, and an admin connection to their bus."""
    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=["sandbox", "authority"],
        extra_env={"FMCSA_AUTHORITY_RATE_PER_S": "50", "FMCSA_LOG_JSON": "true", **extra_env},
    )
    launcher.start()
    try:
        assert launcher.nats is not None
        nc = await nats.connect(launcher.nats.url, **launcher.bus_admin())
        await declare(nc.jetstream(), Topology())
        try:
            yield launcher, nc
        finally:
            with contextlib.suppress(nats.errors.Error, ConnectionError):
                await nc.close()
    finally:
        launcher.stop()


@pytest.fixture
async def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Launcher, Client]]:
    async with launched(tmp_path, monkeypatch, {}) as running:
        yield running


async def events(nc: Client) -> list[Any]:
    found = []
    async for delivered in read_stream(nc.jetstream(), subject="fmcsa.evt.*.authority.*"):
        if isinstance(delivered.decoded, Decoded):
            found.append(delivered.decoded.event)
    return found


async def requested(
    nc: Client, dots: list[str], wait_until: WaitUntil
) -> tuple[dict[UUID, str], list[Any], list[Any]]:
    """Request a sync of each DOT and wait for every outcome: each request's DOT, its outcomes, and every
    event of those requests."""
    requests = [request(dot) for dot in dots]
    await Bus(nc.jetstream(), producer="test").publish_many(requests)
    by_request = {r.request_id: r.dot for r in requests}
    seen: list[Any] = []

    async def answered() -> bool:
        nonlocal seen
        seen = await events(nc)
        return by_request.keys() <= {e.request_id for e in seen if isinstance(e, SourceSynced | SourceFailed)}

    await wait_until(answered, what=f"outcomes of {len(by_request)} authority syncs", within_s=60)
    mine = [e for e in seen if getattr(e, "request_id", None) in by_request]
    return by_request, [e for e in mine if isinstance(e, SourceSynced | SourceFailed)], mine


async def sync(nc: Client, dots: list[str], wait_until: WaitUntil) -> dict[str, list[CarrierDataChanged]]:
    """Request a sync of each DOT, wait for every outcome; the changes of each request, by DOT."""
    by_request, outcomes, mine = await requested(nc, dots, wait_until)
    assert all(isinstance(o, SourceSynced) for o in outcomes), outcomes
    changes: dict[str, list[CarrierDataChanged]] = {dot: [] for dot in dots}
    for event in mine:
        if isinstance(event, CarrierDataChanged):
            changes[by_request[event.request_id]].append(event)
    return changes


def matches(expected: object, value: object) -> bool:
    return isinstance(value, dict) if expected is dict else value == expected


async def test_each_scripted_dot_gives_its_change_kind_with_before_and_after_after_a_bump(
    system: tuple[Launcher, Client], wait_until: WaitUntil
) -> None:
    launcher, nc = system
    dots = list(SCRIPTED)
    baseline = await sync(nc, dots, wait_until)
    assert baseline == {dot: [] for dot in dots}  # a first sync is a baseline
    assert launcher.sandbox_url is not None
    async with httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=10) as sandbox:
        (await sandbox.post("/_sandbox/bump")).raise_for_status()
        changed = await sync(nc, dots, wait_until)
        for dot, (kind, subject, before, after) in SCRIPTED.items():
            assert [c.kind.value for c in changed[dot]] == [kind], (dot, changed[dot])
            (change,) = changed[dot]
            assert change.subject.startswith(subject)
            assert matches(before, change.before), change
            assert matches(after, change.after), change
        issued = changed["99700008"][0].after
        assert isinstance(issued, dict)
        assert set(issued) == {"date", "reason"}
        assert await sync(nc, dots, wait_until) == {dot: [] for dot in dots}  # the same data: nothing
        (await sandbox.post("/_sandbox/bump")).raise_for_status()
        lifted = await sync(nc, ["99700008", "99700005"], wait_until)
    assert [(c.kind.value, c.before, c.after) for c in lifted["99700008"]] == [
        ("oos_order_lifted", issued, None)
    ]
    assert [(c.kind.value, c.before, c.after) for c in lifted["99700005"]] == [
        ("authority_status_changed", "inactive", "active")
    ]
    synced = [e for e in await events(nc) if isinstance(e, SourceSynced)]
    summary = synced[-1].summary
    assert set(summary) == {"authority", "dockets", "oos_order", "insurance"}


@pytest.fixture
async def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Launcher, Client]]:
    """As `system`, with the daily difference gate on (the launcher turns it off) checking every second."""
    gate = {
        "FMCSA_AUTHORITY_DATAHUB_RATE_PER_S": "50",
        "FMCSA_AUTHORITY_DAILY_DIFFERENCE": "true",
        "FMCSA_AUTHORITY_DAILY_DIFFERENCE_CHECK_S": "1",
    }
    async with launched(tmp_path, monkeypatch, gate) as running:
        yield running


async def outcomes(nc: Client, dots: list[str], wait_until: WaitUntil) -> dict[str, SourceSynced]:
    """Request a sync of each DOT; its one outcome, by DOT (every one a SourceSynced)."""
    by_request, found, _ = await requested(nc, dots, wait_until)
    assert len(found) == len(by_request), "exactly one outcome per request"
    assert all(isinstance(o, SourceSynced) for o in found), found
    return {by_request[o.request_id]: o for o in found if isinstance(o, SourceSynced)}


async def test_with_the_daily_difference_gate_only_the_bumped_carrier_calls_qcmobile(
    gated: tuple[Launcher, Client], wait_until: WaitUntil
) -> None:
    launcher, nc = gated
    dots, changed = ["2847193", "1000001", "1000002"], "1000001"
    first = await outcomes(nc, dots, wait_until)
    assert not any(o.checked_unchanged for o in first.values())  # never fetched: all fetched
    assert launcher.sandbox_url is not None
    async with httpx.AsyncClient(base_url=launcher.sandbox_url, timeout=10) as sandbox:
        (await sandbox.post("/_sandbox/reset")).raise_for_status()
        (await sandbox.post("/_sandbox/bump", json={"dots": [int(changed)]})).raise_for_status()

        async def read() -> bool:  # the gate has read the new publication
            seen = (await sandbox.get("/_sandbox/stats")).json()["requests_seen"]
            return any(s.startswith("/resource/nakq-58th.json") for s in seen)

        await wait_until(read, what="the gate reading the daily difference", within_s=20)
        (await sandbox.post("/_sandbox/reset")).raise_for_status()
        second = await outcomes(nc, dots, wait_until)
        seen = (await sandbox.get("/_sandbox/stats")).json()["requests_seen"]
    assert {dot for dot, o in second.items() if not o.checked_unchanged} == {changed}
    qcmobile = {s.split("?")[0].split("/")[4] for s in seen if s.startswith("/qc/services/carriers/")}
    assert qcmobile == {changed}, "no QCMobile call for the carriers no publication listed"
    assert all(o.upstream_as_of == first[dot].upstream_as_of for dot, o in second.items() if dot != changed)
