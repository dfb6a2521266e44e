"""The change feed end to end (issue 13): every service a real process on a real nats-server, the
sandbox as the upstream, and only the HTTP API and the sandbox's admin route to drive them.

Register the scripted DOTs 99700001..99700004, sync (a baseline: no change), bump the sandbox's data
version, sync again: `GET /api/changes` holds exactly the changes services/sandbox/README.md documents
for the bump, with the right before and after, and nothing else; a rebuild of the status store from
the stream then finds no difference. A source service killed (SIGKILL, by the `source.after_store`
failpoint) after committing a fetch and its change outbox but before publishing anything loses no
change and doubles none.

The scheduler runs with publishing off: it only releases the in-flight markers of answered requests,
so the tests' manual triggers decide every request.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_cli.launcher import Launcher, bus_credential_env
from fmcsa_embedded import free_port
from fmcsa_events.permissions import STATUS
from fmcsa_runtime.tokens import Role, mint

SERVICES = ["sandbox", "status", "csa", "violations", "inspections", "authority", "scheduler", "gateway"]
"""What the feed needs; the scheduler only releases in-flight markers (it publishes nothing here)."""

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

SECRET = "system-tests-of-the-change-feed-0123456789"
DOTS = ["99700001", "99700002", "99700003", "99700004"]
SOURCES = ["csa", "violations", "inspections", "authority"]
FAILPOINT = "source.after_store"
ENV = {
    "FMCSA_JWT_SECRET": SECRET,
    "FMCSA_SCHEDULER_ENABLED": "false",
    "FMCSA_GATEWAY_TRIGGER_PER_MINUTE": "100000",  # retries a 409 every 20 ms: not what the limit is for
    "FMCSA_CSA_RATE_PER_S": "50",
    "FMCSA_VIOLATIONS_RATE_PER_S": "50",
    "FMCSA_INSPECTIONS_RATE_PER_S": "50",
    "FMCSA_SOURCE_ACK_WAIT_S": "3",  # a killed source's requests come back after 3 s, not 60
    "FMCSA_STATUS_BATCH_WAIT_MS": "5",
    "FMCSA_LOG_JSON": "true",
}


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher passes the caller's FMCSA_* variables on: none of the developer's may leak in."""
    for key in list(os.environ):
        if key.startswith("FMCSA_") and key != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


@pytest.fixture
def failpoints_dir(tmp_path: Path) -> Path:
    """Where the failpoint keeps its `fired` marker. The marker is written here first, so the point
    stays quiet through the baseline; a test that wants the crash removes it.
    """
    folder = tmp_path / "failpoints"
    folder.mkdir()
    (folder / f"{FAILPOINT}.fired").touch()
    return folder


@pytest.fixture
def system(tmp_path: Path, failpoints_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launcher]:
    _clean_env(monkeypatch)
    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=SERVICES,
        extra_env={**ENV, "FMCSA_FAILPOINTS": FAILPOINT, "FMCSA_FAILPOINTS_DIR": str(failpoints_dir)},
    )
    try:
        launcher.start()
        yield launcher
    finally:
        launcher.stop(grace_s=10)


class Api:
    """The gateway's API as an admin, and the waits the tests need on it."""

    def __init__(self, client: httpx.AsyncClient, wait_until: Any) -> None:
        self.client = client
        self.wait_until = wait_until

    async def register(self, dots: list[str]) -> None:
        for dot in dots:
            answer = await self.client.post("/api/companies", json={"dot_number": dot})
            assert answer.status_code in (200, 201), answer.text

        async def listed() -> bool:
            answer = await self.client.get("/api/companies", params={"limit": 500})
            return {c["dot_number"] for c in answer.json()["items"]} >= set(dots)

        await self.wait_until(listed, what="the companies in the status view", within_s=15)

    async def trigger(self, dots: list[str], sources: list[str] | None = None) -> list[str]:
        """Start a manual request for every pair; the request ids. A pair whose previous request's
        in-flight marker the scheduler has not released yet (it follows outcomes a moment behind the
        view) is asked again, alone, until it starts.
        """
        body: dict[str, Any] = {"dot_numbers": dots, **({"sources": sources} if sources else {})}
        answer = await self.client.post("/api/sync/trigger", json=body)
        assert answer.status_code in (202, 409), answer.text
        if answer.status_code == 409:
            waiting = [(dot, source) for dot in dots for source in sources or SOURCES]
            started: list[str] = []
        else:
            waiting = [(s["dot_number"], s["source"]) for s in answer.json()["skipped"]]
            started = [s["request_id"] for s in answer.json()["started"]]

        async def all_started() -> bool:
            dot, source = waiting[0]
            again = await self.client.post(
                "/api/sync/trigger", json={"dot_numbers": [dot], "sources": [source]}
            )
            assert again.status_code in (202, 409), again.text
            if again.status_code == 202:
                started.extend(s["request_id"] for s in again.json()["started"])
                waiting.pop(0)
            return not waiting

        if waiting:
            await self.wait_until(all_started, what="every request started", within_s=15)
        return started

    async def outcomes(self, request_ids: list[str], *, within_s: float) -> dict[str, str]:
        """Wait until every request has its outcome in the sync log; their statuses by request id."""
        found: dict[str, str] = {}

        async def answered() -> bool:
            answer = await self.client.get("/api/sync/log", params={"limit": 500})
            found.update({e["request_id"]: e["status"] for e in answer.json()["items"]})
            return all(found.get(r) in ("succeeded", "failed") for r in request_ids)

        await self.wait_until(answered, what=f"outcomes of {len(request_ids)} requests", within_s=within_s)
        return {r: found[r] for r in request_ids}

    async def sync(self, dots: list[str], *, within_s: float = 30) -> None:
        statuses = await self.outcomes(await self.trigger(dots), within_s=within_s)
        assert set(statuses.values()) == {"succeeded"}, statuses

    async def driving(self) -> dict[str, Any]:
        """The newest point of 99700001's Unsafe Driving series."""
        answer = await self.client.get("/api/companies/99700001/history", params={"source": "csa"})
        assert answer.status_code == 200, answer.text
        series = {s["subject"]: s["points"] for s in answer.json()["series"]}
        values: dict[str, Any] = series["unsafe_driving"][-1]["values"]
        return values

    async def changes(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            answer = await self.client.get("/api/changes", params=params)
            assert answer.status_code == 200, answer.text
            items += answer.json()["items"]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                return items


@pytest.fixture
async def api(system: Launcher, wait_until: Any) -> AsyncIterator[Api]:
    token = mint(SECRET, role=Role.ADMIN, subject="change-feed-test")
    async with httpx.AsyncClient(
        base_url=system.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:

        async def ready() -> bool:
            try:
                return (await client.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ready, what="the gateway ready", within_s=30)
        yield Api(client, wait_until)


async def bump(launcher: Launcher) -> int:
    assert launcher.sandbox_url is not None
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.post(f"{launcher.sandbox_url}/_sandbox/bump")
    assert answer.status_code == 200, answer.text
    version: int = answer.json()["data_version"]
    return version


def number(value: Any) -> Decimal:
    return Decimal(str(value).rstrip("%"))


def key(change: dict[str, Any]) -> tuple[str, str, str, str]:
    return change["dot_number"], change["source"], change["kind"], change["subject"]


def assert_the_documented_changes(changes: list[dict[str, Any]]) -> None:
    """Exactly what services/sandbox/README.md ("Scripted DOTs") says the bump 1 -> 2 changes."""
    assert sorted(Counter(key(c) for c in changes).items()) == sorted(
        {
            ("99700001", "csa", "basic_percentile_changed", "unsafe_driving"): 1,
            ("99700001", "csa", "basic_alert_started", "unsafe_driving"): 1,
            ("99700002", "violations", "violations_added", "violations"): 1,
            ("99700003", "inspections", "safety_rating_changed", "safety_rating"): 1,
            ("99700003", "inspections", "operating_status_changed", "operating_status"): 1,
            ("99700003", "authority", "oos_order_issued", "oos_order"): 1,  # the same order, on QCMobile
            ("99700004", "csa", "basic_became_not_public", "vehicle_maintenance"): 1,
        }.items()
    ), changes
    by_key = {key(c): c for c in changes}

    percentile = by_key["99700001", "csa", "basic_percentile_changed", "unsafe_driving"]
    assert number(percentile["before"]["percentile"]) == 45
    assert number(percentile["after"]["percentile"]) == 58
    alert = by_key["99700001", "csa", "basic_alert_started", "unsafe_driving"]
    assert (alert["before"]["alert"], alert["after"]["alert"]) == (False, True)

    added = by_key["99700002", "violations", "violations_added", "violations"]
    assert added["after"]["count"] == 1
    assert added["after"]["oos_count"] == 1
    assert added["after"]["latest_inspection_date"] == "2026-10-15"
    assert added["before"]["count"] == 213  # the 212 rows + 1 of version 1

    rating = by_key["99700003", "inspections", "safety_rating_changed", "safety_rating"]
    assert str(rating["before"]["rating"]).upper()[0] == "S"
    assert str(rating["after"]["rating"]).upper()[0] == "C"
    status = by_key["99700003", "inspections", "operating_status_changed", "operating_status"]
    assert str(status["before"]["status"]).upper() == "ACTIVE"
    assert str(status["after"]["status"]).upper() == "OUT-OF-SERVICE"

    hidden = by_key["99700004", "csa", "basic_became_not_public", "vehicle_maintenance"]
    assert number(hidden["before"]["percentile"]) == 38
    assert hidden["after"]["percentile"] is None

    positions = [c["position"] for c in changes]
    assert positions == sorted(positions, reverse=True), "the feed is newest first"
    assert len({c["event_id"] for c in changes}) == len(changes)


def verify_rebuild(launcher: Launcher) -> subprocess.CompletedProcess[str]:
    """Stop the projector, then rebuild the status store from the stream beside it and compare."""
    launcher.children["status"].stop(grace_s=10)
    assert launcher.nats is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")},
        "FMCSA_NATS_URL": launcher.nats.url,
        **bus_credential_env(launcher.data_dir, STATUS),
        "FMCSA_DATA_DIR": str(launcher.data_dir),
        "FMCSA_LOG_JSON": "true",
    }
    return subprocess.run(
        [sys.executable, "-m", "fmcsa_status.rebuild", "--verify", "--from-scratch"],  # the live store
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_bump_puts_exactly_the_documented_changes_in_the_feed_and_a_rebuild_agrees(
    system: Launcher, api: Api
) -> None:
    await api.register(DOTS)
    await api.sync(DOTS)
    assert await api.changes() == [], "a company's first fetch is a baseline"
    assert await api.driving() == {"percentile": 45.0, "measure": 1.87}

    assert await bump(system) == 2
    await api.sync(DOTS)
    changes = await api.changes()
    assert_the_documented_changes(changes)

    # the filters answer subsets of the same feed
    only = await api.client.get("/api/changes", params={"dot": "99700001", "kind": "basic_alert_started"})
    assert [key(c) for c in only.json()["items"]] == [
        ("99700001", "csa", "basic_alert_started", "unsafe_driving")
    ]
    # csa's as-of is the month the snapshot was observed in: the bump's run replaces this month's point
    assert await api.driving() == {"percentile": 58.0, "measure": 1.87}

    # a sync with nothing new adds nothing
    await api.sync(DOTS)
    assert len(await api.changes()) == len(changes)

    rebuilt = verify_rebuild(system)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]


async def test_a_source_killed_between_storing_and_publishing_loses_no_change_and_doubles_none(
    system: Launcher, api: Api, failpoints_dir: Path, wait_until: Any
) -> None:
    await api.register(DOTS)
    await api.sync(DOTS)
    assert await bump(system) == 2

    # arm the failpoint: the first csa fetch stored after the bump kills its process before any publish
    (failpoints_dir / f"{FAILPOINT}.fired").unlink()
    csa = system.children["csa"]
    crashed = await api.trigger(["99700001", "99700004"], sources=["csa"])

    async def killed() -> bool:
        return not csa.alive

    await wait_until(killed, what="the csa service killed by its failpoint", within_s=20)
    assert csa.process is not None
    assert csa.process.returncode == -9  # SIGKILL: nothing was published, nothing acked
    assert (failpoints_dir / f"{FAILPOINT}.fired").exists()
    assert system.supervise() == ["csa"]  # restarted; the killed requests come back after the ack wait
    assert set((await api.outcomes(crashed, within_s=30)).values()) == {"succeeded"}
    log = (await api.client.get("/api/sync/log", params={"source": "csa", "limit": 500})).json()["items"]
    counts = [e["counts"] for e in log if e["request_id"] in crashed]
    # the request killed after its commit found nothing new when it came back: its changes can only
    # have reached the feed from the outbox written with the rows
    assert any(c["inserted"] == 0 and c["updated"] == 0 for c in counts), counts
    await api.sync(DOTS)  # the other sources, and every source once more: nothing new

    changes = await api.changes()
    assert_the_documented_changes(changes)
