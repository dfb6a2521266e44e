"""The change feed end to end (issue 13): every service a real process on a real nats-server, the
sandbox as the upstream, and only the HTTP API and the sandbox's admin route to drive them.

Register the scripted DOTs 99700001..99700004, sync (a baseline: no change), bump the sandbox's data
version, sync again: `GET /api/changes` holds exactly the changes services/sandbox/README.md documents
for the bump, with the right before and after, and nothing else; a rebuild of the status store from
the stream then finds no difference. The authority source's DOTs 99700005..99700012 do the same for its
nine change kinds (issue 22, "Done when"), and a rule on `insurance_cancellation_pending` sends its
signed webhook to the sandbox's receiver. A source service killed (SIGKILL, by the `source.after_store`
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
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from fmcsa_cli.launcher import ALL_SERVICES, Launcher, bus_credential_env
from fmcsa_embedded import free_port
from fmcsa_events.permissions import STATUS
from fmcsa_runtime.tokens import Role, mint

SERVICES = [spec.name for spec in ALL_SERVICES]
"""Every service: the feed and a rule's webhook need all but the scheduler, which only releases in-flight
markers here (it publishes nothing)."""

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

SECRET = "system-tests-of-the-change-feed-0123456789"
DOTS = ["99700001", "99700002", "99700003", "99700004"]
AUTHORITY_DOTS = [str(dot) for dot in range(99700005, 99700013)]
WEBHOOK_SECRET = "sandbox-webhook-secret"  # the sandbox receiver's default (FMCSA_SANDBOX_WEBHOOK_SECRET)
SOURCES = ["csa", "violations", "inspections", "authority"]
FAILPOINT = "source.after_store"
ENV = {
    "FMCSA_JWT_SECRET": SECRET,
    "FMCSA_SCHEDULER_ENABLED": "false",
    "FMCSA_GATEWAY_TRIGGER_PER_MINUTE": "100000",  # retries a 409 every 20 ms: not what the limit is for
    "FMCSA_CSA_RATE_PER_S": "50",
    "FMCSA_VIOLATIONS_RATE_PER_S": "50",
    "FMCSA_INSPECTIONS_RATE_PER_S": "50",
    "FMCSA_AUTHORITY_RATE_PER_S": "50",
    "FMCSA_AUTHORITY_DATAHUB_RATE_PER_S": "50",
    "FMCSA_NOTIFIER_RETRY_SCHEDULE_S": "0.5,0.5,0.5",
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
        nats_sync_always=False,
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

    async def changes(self, dot: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            if dot is not None:
                params["dot"] = dot
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


async def turned(api: Api, dot: str, light: str) -> bool:
    """The feed has a `risk_changed` fact of `dot` to `light`."""
    return any(c["kind"] == "risk_changed" and c["subject"] == light for c in await api.changes(dot))


def observed(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes the sources observed, without the status projector's derived `risk_changed` facts, after
    checking those: each one a move of the light (subject = the light after it), never two alike in a row
    for one carrier. Which source's success moved a light, and whether a carrier's two moves of one bump
    land in one batch (one fact) or two, depends on arrival order, so they are not listed exactly."""
    risks = [c for c in changes if c["kind"] == "risk_changed"]
    last: dict[str, str] = {}
    for change in sorted(risks, key=lambda c: c["position"]):
        assert change["before"]["light"] != change["after"]["light"], change
        assert change["subject"] == change["after"]["light"], change
        assert last.get(change["dot_number"]) != change["subject"], risks
        last[change["dot_number"]] = change["subject"]
    return [c for c in changes if c["kind"] != "risk_changed"]


def assert_the_documented_changes(changes: list[dict[str, Any]]) -> None:
    """Exactly what services/sandbox/README.md ("Scripted DOTs") says the bump 1 -> 2 changes."""
    changes = observed(changes)
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
    # the projector publishes a light's move after the batch that moved it commits: a moment later
    await api.wait_until(
        lambda: turned(api, "99700003", "red"), what="99700003 turned red (Unsatisfactory)", within_s=30
    )
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
    assert len(observed(await api.changes())) == len(observed(changes))

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


def assert_the_documented_authority_changes(changes: list[dict[str, Any]]) -> None:
    """Exactly what services/sandbox/README.md ("The authority source's scripted DOTs") says the bump
    1 -> 2 changes for 99700005..99700012, each with its before and after.
    """
    changes = observed(changes)
    assert sorted(Counter(key(c)[:3] for c in changes).items()) == sorted(
        {
            ("99700005", "authority", "authority_status_changed"): 1,
            ("99700005", "inspections", "operating_status_changed"): 1,  # SAFER: NOT AUTHORIZED
            ("99700006", "authority", "authority_revocation_pending"): 1,
            ("99700007", "authority", "docket_added"): 1,
            ("99700008", "authority", "oos_order_issued"): 1,
            ("99700008", "inspections", "operating_status_changed"): 1,  # SAFER: OUT-OF-SERVICE
            ("99700009", "authority", "insurance_filing_added"): 1,
            ("99700010", "authority", "insurance_cancellation_pending"): 1,
            ("99700011", "authority", "insurance_cancelled"): 1,
            ("99700012", "authority", "insurance_below_required"): 1,
        }.items()
    ), changes
    by = {(c["dot_number"], c["kind"]): c for c in changes if c["source"] == "authority"}

    def before_after(dot: str, kind: str) -> tuple[Any, Any]:
        change = by[dot, kind]
        return change["before"], change["after"]

    assert by["99700005", "authority_status_changed"]["subject"] == "common"
    assert before_after("99700005", "authority_status_changed") == ("active", "inactive")
    assert before_after("99700006", "authority_revocation_pending") == ("active", "pending_revocation")
    assert before_after("99700007", "docket_added") == (None, "FF990702")
    assert before_after("99700008", "oos_order_issued") == (
        None,
        {"date": "2026-11-25", "reason": "Imminent hazard"},
    )
    added_before, added = before_after("99700009", "insurance_filing_added")
    assert added_before is None
    assert (added["policy_number"], added["type"], added["coverage"]) == ("CG990700002", "CARGO", 100_000)
    pending_before, pending = before_after("99700010", "insurance_cancellation_pending")
    assert (pending_before["type"], pending_before["cancellation"]) == ("BIPD", None)
    assert pending["cancellation"] > datetime.now(UTC).date().isoformat(), "a cancellation ahead"
    cancelled_before, cancelled = before_after("99700011", "insurance_cancelled")
    assert (cancelled_before["type"], cancelled_before["cancellation"]) == ("BIPD", None)
    assert cancelled["cancellation"] <= datetime.now(UTC).date().isoformat(), "a cancellation behind"
    assert before_after("99700012", "insurance_below_required") == (
        {"on_file": 750_000, "required": 750_000},
        {"on_file": 500_000, "required": 750_000},
    )


async def test_the_authority_dots_put_each_new_kind_in_the_feed_and_a_pending_cancellation_its_webhook(
    system: Launcher, api: Api
) -> None:
    """Issue 22's "Done when", through the gateway as a user drives it: register 99700005..99700012,
    sync, put a rule on `insurance_cancellation_pending` with the sandbox's receiver, bump, sync: each
    new kind is in `GET /api/changes` with before and after, and the receiver gets one signed webhook;
    one more bump lifts the out-of-service order (`oos_order_lifted`).
    """
    await api.register(AUTHORITY_DOTS)
    await api.sync(AUTHORITY_DOTS)
    assert await api.changes() == [], "a company's first fetch is a baseline"
    assert system.sandbox_url is not None
    rule = {
        "kinds": ["insurance_cancellation_pending"],
        "destinations": [{"url": f"{system.sandbox_url}/_sandbox/webhooks/cancel", "secret": WEBHOOK_SECRET}],
    }
    put = await api.client.put("/api/alert-rules/cancel", json=rule)
    assert put.status_code == 200, put.text

    assert await bump(system) == 2
    await api.sync(AUTHORITY_DOTS)
    for dot, light, why in (
        ("99700010", "yellow", "cancellation pending"),
        ("99700012", "red", "BIPD below"),
    ):
        await api.wait_until(
            lambda dot=dot, light=light: turned(api, dot, light),
            what=f"{dot} turned {light} ({why})",
            within_s=30,
        )
    changes = await api.changes()
    assert_the_documented_authority_changes(changes)
    pending = next(c for c in changes if c["kind"] == "insurance_cancellation_pending")

    async def delivered() -> list[dict[str, Any]]:
        answer = await api.client.get("/api/deliveries", params={"status": "delivered"})
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    async def one_delivered() -> bool:
        return len(await delivered()) >= 1

    await api.wait_until(one_delivered, what="the pending cancellation's webhook", within_s=30)
    [delivery] = await delivered()
    assert (delivery["rule"], delivery["dot"], delivery["kind"]) == (
        "cancel",
        "99700010",
        "insurance_cancellation_pending",
    )
    assert delivery["change_event_id"] == pending["event_id"]
    async with httpx.AsyncClient(timeout=5) as http:
        received = (await http.get(f"{system.sandbox_url}/_sandbox/webhooks")).json()["received"]
    assert [(r["name"], r["signature_ok"], r["event_id"]) for r in received] == [
        ("cancel", True, delivery["id"])
    ]
    body = received[0]["body"]["change"]
    assert (body["kind"], body["before"], body["after"]) == (
        "insurance_cancellation_pending",
        pending["before"],
        pending["after"],
    )

    assert await bump(system) == 3
    await api.sync(AUTHORITY_DOTS)
    lifted = [c for c in await api.changes() if c["kind"] == "oos_order_lifted"]
    assert [(c["dot_number"], c["before"], c["after"]) for c in lifted] == [
        ("99700008", {"date": "2026-11-25", "reason": "Imminent hazard"}, None)
    ]
