"""Alert rules and webhooks end to end (issue 14): every service a real process on a real nats-server,
the sandbox as the upstream and as the webhook receiver (loopback only).

Register two scripted DOTs, sync (a baseline: no change), put a rule, bump the sandbox, sync again: the
receiver gets exactly one signed delivery per change the rule matches; the backtest over the period
equals what fired live; an operator's resend arrives again with the same event id; and a rebuild of the
status projection from the stream (a replay) sends nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from fmcsa_cli.launcher import Launcher
from fmcsa_embedded import free_port
from fmcsa_events.topology import EVENTS_STREAM, NOTIFIER_DURABLE
from fmcsa_runtime.tokens import Role, mint

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

SECRET = "system-tests-of-the-webhooks-0123456789"
WEBHOOK_SECRET = "sandbox-webhook-secret"  # the sandbox receiver's default (FMCSA_SANDBOX_WEBHOOK_SECRET)
DOTS = ["99700001", "99700003"]
ENV = {
    "FMCSA_JWT_SECRET": SECRET,
    "FMCSA_SCHEDULER_ENABLED": "false",
    "FMCSA_GATEWAY_TRIGGER_PER_MINUTE": "100000",  # retries a 409 every 20 ms: not what the limit is for
    "FMCSA_CSA_RATE_PER_S": "50",
    "FMCSA_VIOLATIONS_RATE_PER_S": "50",
    "FMCSA_INSPECTIONS_RATE_PER_S": "50",
    "FMCSA_STATUS_BATCH_WAIT_MS": "5",
    "FMCSA_NOTIFIER_RETRY_SCHEDULE_S": "0.5,0.5,0.5",
    "FMCSA_LOG_JSON": "true",
}
SERVICES = ["sandbox", "status", "csa", "violations", "inspections", "scheduler", "notifier", "gateway"]


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launcher]:
    for name in list(os.environ):
        if name.startswith("FMCSA_") and name != "FMCSA_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    launcher = Launcher(
        data_dir=tmp_path / "data",
        gateway_port=free_port(),
        services=SERVICES,
        extra_env=ENV,
        nats_sync_always=False,
    )
    try:
        launcher.start()
        yield launcher
    finally:
        launcher.stop(grace_s=10)


@pytest.fixture
async def client(system: Launcher, wait_until: Any) -> AsyncIterator[httpx.AsyncClient]:
    token = mint(SECRET, role=Role.ADMIN, subject="webhook-test")
    async with httpx.AsyncClient(
        base_url=system.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20
    ) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(ready, what="the gateway ready", within_s=30)
        yield http


async def sync(client: httpx.AsyncClient, wait_until: Any) -> None:
    """Trigger every pair (again until each starts) and wait for every outcome to be a success."""
    started: list[str] = []
    waiting = [(dot, source) for dot in DOTS for source in ("csa", "violations", "inspections")]

    async def all_started() -> bool:
        dot, source = waiting[0]
        answer = await client.post("/api/sync/trigger", json={"dot_numbers": [dot], "sources": [source]})
        assert answer.status_code in (202, 409), answer.text
        if answer.status_code == 202:
            started.extend(s["request_id"] for s in answer.json()["started"])
            waiting.pop(0)
        return not waiting

    await wait_until(all_started, what="every request started", within_s=30)
    found: dict[str, str] = {}

    async def answered() -> bool:
        answer = await client.get("/api/sync/log", params={"limit": 500})
        found.update({e["request_id"]: e["status"] for e in answer.json()["items"]})
        return all(found.get(r) in ("succeeded", "failed") for r in started)

    await wait_until(answered, what="every outcome", within_s=60)
    assert {found[r] for r in started} == {"succeeded"}


async def receiver(system: Launcher) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{system.sandbox_url}/_sandbox/webhooks")
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


async def notifier_idle(system: Launcher) -> bool:
    assert system.nats is not None
    nc = await nats.connect(system.nats.url, **system.bus_admin())
    try:
        info = await nc.jetstream().consumer_info(EVENTS_STREAM, NOTIFIER_DURABLE)
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await nc.close()


async def test_a_bump_sends_one_signed_webhook_per_matching_change_and_the_backtest_agrees(
    system: Launcher, client: httpx.AsyncClient, wait_until: Any
) -> None:
    for dot in DOTS:
        assert (await client.post("/api/companies", json={"dot_number": dot})).status_code in (200, 201)

    async def listed() -> bool:
        answer = await client.get("/api/companies", params={"limit": 500})
        return {c["dot_number"] for c in answer.json()["items"]} >= set(DOTS)

    await wait_until(listed, what="the companies in the status view", within_s=20)
    await sync(client, wait_until)  # the baseline: no change

    since = datetime.now(UTC)
    rule = {
        "kinds": ["basic_alert_started", "basic_percentile_changed", "safety_rating_changed"],
        "destinations": [{"url": f"{system.sandbox_url}/_sandbox/webhooks/demo", "secret": WEBHOOK_SECRET}],
    }
    put = await client.put("/api/alert-rules/demo", json=rule)
    assert put.status_code == 200, put.text
    assert WEBHOOK_SECRET not in put.text
    quiet = {"kinds": ["crashes_added"], "destinations": rule["destinations"]}
    assert (await client.put("/api/alert-rules/quiet", json=quiet)).status_code == 200

    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.post(f"{system.sandbox_url}/_sandbox/bump")).status_code == 200
    await sync(client, wait_until)

    async def three_delivered() -> bool:
        answer = await client.get("/api/deliveries", params={"status": "delivered"})
        return len(answer.json()["items"]) >= 3

    await wait_until(three_delivered, what="three delivered webhooks", within_s=60)
    await wait_until(lambda: notifier_idle(system), what="the notifier idle", within_s=30)
    deliveries = (await client.get("/api/deliveries")).json()["items"]
    assert len(deliveries) == 3, deliveries
    assert {d["rule"] for d in deliveries} == {"demo"}
    assert sorted((d["dot"], d["kind"]) for d in deliveries) == [
        ("99700001", "basic_alert_started"),
        ("99700001", "basic_percentile_changed"),
        ("99700003", "safety_rating_changed"),
    ]
    seen = await receiver(system)
    assert seen["total"] == 3
    assert all(r["signature_ok"] for r in seen["received"])
    assert set(seen["per_event_id"]) == {d["id"] for d in deliveries}
    assert {r["body"]["change_event_id"] for r in seen["received"]} == {
        d["change_event_id"] for d in deliveries
    }

    backtest = await client.post("/api/alert-rules/demo/backtest", json={"since": since.isoformat()})
    assert backtest.status_code == 200, backtest.text
    result = backtest.json()
    assert result["scanned"] >= 3, result
    assert {f["event_id"] for f in result["fired"]} == {d["change_event_id"] for d in deliveries}
    assert result["equal"] is True
    assert (await receiver(system))["total"] == 3  # the backtest sent nothing
    quiet_backtest = await client.post("/api/alert-rules/quiet/backtest", json={"since": since.isoformat()})
    assert quiet_backtest.json()["fired"] == []
    assert quiet_backtest.json()["equal"] is True

    # an operator's resend arrives again under the same event id
    operator = mint(SECRET, role=Role.OPERATOR, subject="ops")
    first = deliveries[0]["id"]
    resent = await client.post(
        f"/api/deliveries/{first}/resend", headers={"Authorization": f"Bearer {operator}"}
    )
    assert resent.status_code == 202, resent.text

    async def resent_arrived() -> bool:
        return (await receiver(system))["per_event_id"].get(first) == 2

    await wait_until(resent_arrived, what="the resent webhook", within_s=30)

    # a replay of the status projection from the stream sends nothing
    await wait_until(lambda: notifier_idle(system), what="the notifier idle", within_s=30)
    before = (await receiver(system))["total"]
    assert system.nats is not None
    rebuilt = subprocess.run(  # noqa: ASYNC221  # the CLI as a user runs it; nothing else waits meanwhile
        [sys.executable, "-m", "fmcsa_cli", "rebuild-status"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("FMCSA_")},
            "FMCSA_DATA_DIR": str(system.data_dir),
            "FMCSA_LOG_JSON": "true",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert await notifier_idle(system)
    assert (await receiver(system))["total"] == before
    # every service did all of the above as its own NATS user: not one publish or subscribe was refused
    nats_log = (system.logs_dir / "nats-server.log").read_text()
    assert "Violation" not in nats_log, [line for line in nats_log.splitlines() if "Violation" in line][:5]
