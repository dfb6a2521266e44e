"""Manual triggers: one in-flight marker per (company, source), skipped pairs named, 409 when all are held,
empty body = every registered company, requests carry who asked and a deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import nats

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.inflight import InflightMarker, inflight_key
from fmcsa_events.models import SyncRequested, Trigger
from fmcsa_events.topology import INFLIGHT_BUCKET
from fmcsa_runtime.tokens import Role


async def _register(gateway: Any, bearer: Any, wait_until: Any, *dots: str) -> None:
    """Register companies and wait until the status view shows them (the projector may still be starting;
    once it runs, a trigger waits out its lag itself: test_hardening)."""
    admin = bearer(Role.ADMIN)
    for dot in dots:
        answer = await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=admin)
        assert answer.status_code == 201, answer.text

    async def shown() -> bool:
        for dot in dots:
            answer = await gateway.client.get(f"/api/companies/{dot}/status", headers=admin)
            if answer.status_code != 200:
                return False
        return True

    await wait_until(shown, what=f"companies {dots} in the status view", within_s=30)


async def test_a_trigger_starts_free_pairs_skips_held_ones_and_409s_when_all_are_held(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    lone_gateway = gateway  # with the projector: a trigger names registered companies only
    await _register(gateway, bearer, wait_until, "101", "102")
    operator = bearer(Role.OPERATOR, "olga")
    first = await lone_gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["101"], "sources": ["csa"]}, headers=operator
    )
    assert first.status_code == 202, first.text
    started = first.json()["started"]
    assert [(s["dot_number"], s["source"]) for s in started] == [("101", "csa")]
    held_by = started[0]["request_id"]

    second = await lone_gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["101", "102"]}, headers=operator
    )
    assert second.status_code == 202
    body = second.json()
    pairs = len(SourceKey) * 2  # two companies, every source
    assert sorted((s["dot_number"], s["source"]) for s in body["started"]) == sorted(
        (dot, source.value)
        for dot in ("101", "102")
        for source in SourceKey
        if (dot, source) != ("101", "csa")
    )
    assert [
        (s["dot_number"], s["source"], s["held_by_request_id"], s["reason"]) for s in body["skipped"]
    ] == [("101", "csa", held_by, "in_flight")]

    third = await lone_gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["102", "101"]}, headers=operator
    )
    assert third.status_code == 409
    assert third.headers["content-type"] == "application/problem+json"
    assert str(pairs) in third.json()["detail"]

    requests = [e for _, e, _ in await lone_gateway.events() if isinstance(e, SyncRequested)]
    assert len(requests) == pairs
    assert {(r.trigger, r.requested_by) for r in requests} == {(Trigger.MANUAL, "olga")}
    assert all(
        timedelta(seconds=119) < r.deadline - r.requested_at <= timedelta(seconds=120) for r in requests
    )

    nc = await nats.connect(lone_gateway.nats_url)
    try:
        kv = await nc.jetstream().key_value(INFLIGHT_BUCKET)
        marker = InflightMarker.decode((await kv.get(inflight_key("csa", "101"))).value)
        assert marker is not None
        assert marker.request_id == UUID(held_by)
        assert marker.requested_by == "olga"
    finally:
        await nc.close()


async def test_a_stale_marker_is_taken_over(gateway: Any, bearer: Any, wait_until: Any) -> None:
    lone_gateway = gateway
    await _register(gateway, bearer, wait_until, "55")
    now = datetime.now(UTC)
    old = InflightMarker(
        request_id=uuid4(),
        trigger=Trigger.SCHEDULED,
        requested_by="scheduler",
        taken_at=now - timedelta(hours=2),
        deadline=now - timedelta(hours=1),
        slot=now - timedelta(hours=2),
    )
    nc = await nats.connect(lone_gateway.nats_url)
    try:
        kv = await nc.jetstream().key_value(INFLIGHT_BUCKET)
        await kv.put(inflight_key("violations", "55"), old.encode())
    finally:
        await nc.close()
    answer = await lone_gateway.client.post(
        "/api/sync/trigger",
        json={"dot_numbers": ["55"], "sources": ["violations"]},
        headers=bearer(Role.OPERATOR),
    )
    assert answer.status_code == 202
    assert len(answer.json()["started"]) == 1


async def test_an_empty_trigger_means_every_registered_company(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    admin = bearer(Role.ADMIN)
    answer = await gateway.client.post("/api/sync/trigger", headers=admin)
    assert answer.status_code == 409  # nobody is registered yet: nothing to sync
    await gateway.client.post("/api/companies/import", json=["7", "8", "9"], headers=admin)

    async def registered() -> bool:
        page = (await gateway.client.get("/api/companies", headers=admin)).json()
        return len(page["items"]) == 3

    await wait_until(registered, what="three registered companies")
    answer = await gateway.client.post("/api/sync/trigger", json={"sources": ["inspections"]}, headers=admin)
    assert answer.status_code == 202
    assert sorted(s["dot_number"] for s in answer.json()["started"]) == ["7", "8", "9"]
    answer = await gateway.client.post("/api/sync/trigger", json={}, headers=admin)
    assert answer.status_code == 202
    assert len(answer.json()["started"]) == 3 * (len(SourceKey) - 1)  # inspections is still in flight
    assert len(answer.json()["skipped"]) == 3


async def test_the_sync_log_shows_manual_requests_with_who_asked(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    operator = bearer(Role.OPERATOR, "olga")
    await _register(gateway, bearer, wait_until, "31")
    answer = await gateway.client.post(
        "/api/sync/trigger", json={"dot_numbers": ["31"], "sources": ["csa"]}, headers=operator
    )
    request_id = answer.json()["started"][0]["request_id"]

    async def logged() -> bool:
        page = (await gateway.client.get("/api/sync/log", params={"dot": "31"}, headers=operator)).json()
        return [e["request_id"] for e in page["items"]] == [request_id]

    await wait_until(logged, what="the request in the sync log")
    page = (
        await gateway.client.get(
            "/api/sync/log", params={"trigger": "manual", "status": "requested"}, headers=operator
        )
    ).json()
    entry = page["items"][0]
    assert (entry["dot_number"], entry["source"], entry["requested_by"], entry["status"]) == (
        "31",
        "csa",
        "olga",
        "requested",
    )
    since = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await gateway.client.get("/api/sync/log", params={"since": since}, headers=operator)).json()[
        "items"
    ] == []
    for bad in (
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"status": "done"},
        {"trigger": "cron"},
    ):
        answer = await gateway.client.get("/api/sync/log", params=bad, headers=operator)
        assert answer.status_code == 422, (bad, answer.text)
    summary = (await gateway.client.get("/api/sync/summary", headers=operator)).json()
    assert summary["requests"] == 1
    assert summary["applied_position"] >= 1
