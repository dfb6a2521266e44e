"""The seed systems' drop-in routes (routes/seed.py), each against its native route, through the real
projector: the same rows and totals in the seed worker's names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import nats

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Counts, ErrorKind, SourceFailed, SourceSynced, SyncRequested, Trigger
from fmcsa_events.topology import STATE_BUCKET
from fmcsa_runtime.tokens import Role

DOT, OTHER = "2847193", "1000001"


def requested(dot: str, source: SourceKey, at: datetime) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source=source,
        trigger=Trigger.MANUAL,
        requested_by="alice",
        requested_at=at,
        deadline=at + timedelta(minutes=30),
    )


async def test_sync_status_is_the_sync_log_and_its_totals_in_the_seed_names(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer, admin = bearer(Role.VIEWER), bearer(Role.ADMIN)
    for dot in (DOT, OTHER):
        assert (
            await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=admin)
        ).status_code == 201
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    ok, bad, open_, elsewhere = (
        requested(DOT, SourceKey.CSA, t),
        requested(DOT, SourceKey.VIOLATIONS, t + timedelta(minutes=1)),
        requested(DOT, SourceKey.INSPECTIONS, t + timedelta(minutes=2)),
        requested(OTHER, SourceKey.CSA, t + timedelta(minutes=3)),
    )
    synced = SourceSynced(
        request_id=ok.request_id, dot=DOT, source=SourceKey.CSA,
        counts=Counts(fetched=9, inserted=2, updated=3, unchanged=4), attempts=1,
        started_at=t + timedelta(seconds=1), finished_at=t + timedelta(seconds=3),
    )  # fmt: skip
    failed = SourceFailed(
        request_id=bad.request_id, dot=DOT, source=SourceKey.VIOLATIONS, kind=ErrorKind.UPSTREAM_ERROR,
        retryable=False, attempts=3, message="upstream answered 503", finished_at=t + timedelta(minutes=2),
    )  # fmt: skip
    await gateway.publish_folded(
        [ok, bad, open_, elsewhere, synced, failed], headers=viewer, wait_until=wait_until
    )

    seed = await gateway.client.get(
        "/api/sync/status", params={"organizationId": DOT, "limit": 10}, headers=viewer
    )
    assert seed.status_code == 200, seed.text
    native = (
        await gateway.client.get("/api/sync/log", params={"dot": DOT, "limit": 10}, headers=viewer)
    ).json()
    body = seed.json()
    assert body["success"] is True
    assert [log["id"] for log in body["logs"]] == [item["request_id"] for item in native["items"]]
    by_id = {log["id"]: log for log in body["logs"]}
    assert by_id[str(ok.request_id)] == {
        "id": str(ok.request_id),
        "organizationId": DOT,
        "syncType": "csa_scores",
        "status": "completed",
        "recordsTotal": 9,
        "recordsProcessed": 9,
        "recordsInserted": 2,
        "recordsUpdated": 3,
        "recordsErrored": 0,
        "startedAt": (t + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "completedAt": (t + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "durationMs": 2000,
        "errorMessage": None,
        "triggeredBy": "alice",
    }
    assert (by_id[str(bad.request_id)]["status"], by_id[str(bad.request_id)]["syncType"]) == (
        "failed",
        "violations",
    )
    assert by_id[str(bad.request_id)]["errorMessage"] == "upstream answered 503"
    assert by_id[str(open_.request_id)]["status"] == "running"
    assert body["summary"] == {
        "totalSyncs": 3,
        "successfulSyncs": 1,
        "failedSyncs": 1,
        "lastSync": (t + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    # no organization: every company's syncs, and the totals of the native summary
    everyone = (await gateway.client.get("/api/sync/status", headers=viewer)).json()
    totals = (await gateway.client.get("/api/sync/summary", headers=viewer)).json()
    assert len(everyone["logs"]) == 4
    assert (everyone["summary"]["totalSyncs"], everyone["summary"]["successfulSyncs"]) == (
        totals["requests"],
        totals["succeeded"],
    )
    limited = (await gateway.client.get("/api/sync/status", params={"limit": 1}, headers=viewer)).json()
    assert [log["id"] for log in limited["logs"]] == [str(elsewhere.request_id)]
    # the company's own block speaks the seeds' source names too
    block = (await gateway.client.get(f"/api/companies/{DOT}/status", headers=viewer)).json()["syncStatus"]
    assert [error["source"] for error in block["errors"]] == ["violations"]
    for refused in ({"organizationId": "0"}, {"organizationId": "12a"}, {"limit": "0"}):
        assert (
            await gateway.client.get("/api/sync/status", params=refused, headers=viewer)
        ).status_code == 422


async def test_the_trigger_takes_an_organization_id_and_answers_a_batch_id(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    admin, operator = bearer(Role.ADMIN), bearer(Role.OPERATOR, "olga")
    assert (
        await gateway.client.post("/api/companies", json={"dot_number": DOT}, headers=admin)
    ).status_code == 201

    async def shown() -> bool:  # the projector process may still be starting
        answer = await gateway.client.get(f"/api/companies/{DOT}/status", headers=admin)
        return answer.status_code == 200 and answer.json()["active"] is True

    await wait_until(shown, what="the company in the view", within_s=30)
    answer = await gateway.client.post("/api/sync/trigger", json={"organizationId": DOT}, headers=operator)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert sorted(s["source"] for s in body["started"]) == sorted(SourceKey)
    assert {s["dot_number"] for s in body["started"]} == {DOT}
    assert len(body["batchId"]) == 36
    again = await gateway.client.post("/api/sync/trigger", json={"dot_numbers": [DOT]}, headers=operator)
    assert again.status_code == 409  # all in flight: the native form names the same pairs
    unknown = await gateway.client.post("/api/sync/trigger", json={"organizationId": "999"}, headers=operator)
    assert unknown.status_code == 404


async def test_intervals_and_worker_status_are_the_schedules_and_the_scheduler_heartbeat(
    lone_gateway: Any, bearer: Any
) -> None:
    viewer, admin = bearer(Role.VIEWER), bearer(Role.ADMIN)
    client = lone_gateway.client
    seed = (await client.get("/api/sync/intervals", headers=viewer)).json()
    native = (await client.get("/api/schedules", headers=viewer)).json()["items"]
    assert seed["success"] is True
    assert [(i["syncType"], i["intervalMinutes"], i["enabled"]) for i in seed["intervals"]] == [
        ({"csa": "csa_scores"}.get(s["source"], s["source"]), s["interval_minutes"], s["enabled"])
        for s in native
    ]
    changed = await client.post(
        "/api/sync/intervals/csa_scores", json={"intervalMinutes": 120}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"syncType": "csa_scores", "intervalMinutes": 120, "cron": None, "enabled": True}
    schedules = (await client.get("/api/schedules", headers=viewer)).json()["items"]
    assert [s["interval_minutes"] for s in schedules if s["source"] == "csa"] == [120]
    for path, body, status in (
        ("/api/sync/intervals/csa_scores", {"intervalMinutes": 4}, 422),
        ("/api/sync/intervals/csa_scores", {"intervalMinutes": 1441}, 422),
        ("/api/sync/intervals/crashes", {"intervalMinutes": 60}, 404),
    ):
        assert (await client.post(path, json=body, headers=admin)).status_code == status
    assert (
        await client.post("/api/sync/intervals/violations", json={"intervalMinutes": 60}, headers=viewer)
    ).status_code == 403

    worker = (await client.get("/api/sync/worker-status", headers=viewer)).json()
    assert worker == {"success": True, "worker": {"enabled": False, "running": False, "nextRun": None}}
    now = datetime.now(UTC).replace(microsecond=0)
    soon, later = now + timedelta(minutes=5), now + timedelta(minutes=50)
    document = {
        "replica": "scheduler-1", "enabled": True, "running": True, "ready": True,
        "heartbeat_at": now.isoformat(), "started_at": now.isoformat(), "last_tick_at": now.isoformat(),
        "checkpoint_at": now.isoformat(), "companies": 1, "due": 0, "in_flight": 0, "skipped": {},
        "rejected_schedules": 0, "undecodable_events": 0,
        "sources": {
            source: {
                "enabled": True, "interval_minutes": minutes, "cron": None, "schedule_since": None,
                "next_due_at": due.isoformat(), "next_slot_at": None, "due": 0, "published": 0,
                "in_flight": 0, "backing_off": 0, "skipped": {},
            }
            for source, minutes, due in (("csa", 120, later), ("authority", 1440, soon))
        },
    }  # fmt: skip
    nc = await nats.connect(lone_gateway.nats_url)
    try:
        state = await nc.jetstream().key_value(STATE_BUCKET)
        await state.put("scheduler.status", json.dumps(document).encode())
        worker = (await client.get("/api/sync/worker-status", headers=viewer)).json()
        native_status = (await client.get("/api/scheduler/status", headers=viewer)).json()
    finally:
        await nc.close()
    assert native_status["running"] is True
    assert worker == {
        "success": True,
        "worker": {"enabled": True, "running": True, "nextRun": soon.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
    }
