"""Schedules read from the stream and written as ScheduleChanged; the scheduler's status from its KV key."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest

from fmcsa_events.models import ScheduleChanged
from fmcsa_events.topology import STATE_BUCKET
from fmcsa_runtime.tokens import Role


async def test_schedules_default_to_the_schedulers_defaults_and_a_put_is_read_back(
    lone_gateway: Any, bearer: Any
) -> None:
    admin = bearer(Role.ADMIN, "sam")
    items = (await lone_gateway.client.get("/api/schedules", headers=admin)).json()["items"]
    assert [(s["source"], s["interval_minutes"], s["enabled"], s["default"]) for s in items] == [
        ("csa", 360, True, True),
        ("violations", 360, True, True),
        ("inspections", 360, True, True),
        ("authority", 1440, True, True),
    ]
    answer = await lone_gateway.client.put(
        "/api/schedules/csa", json={"cron": "0 */4 * * *", "enabled": False}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    answer = await lone_gateway.client.put(
        "/api/schedules/violations", json={"interval_minutes": 5}, headers=admin
    )
    assert answer.status_code == 200
    items = {
        s["source"]: s
        for s in (await lone_gateway.client.get("/api/schedules", headers=admin)).json()["items"]
    }
    assert (items["csa"]["cron"], items["csa"]["interval_minutes"], items["csa"]["enabled"]) == (
        "0 */4 * * *",
        None,
        False,
    )
    assert (items["csa"]["changed_by"], items["csa"]["default"]) == ("sam", False)
    assert (items["violations"]["interval_minutes"], items["inspections"]["default"]) == (5, True)
    changes = [e for _, e, _ in await lone_gateway.events() if isinstance(e, ScheduleChanged)]
    assert [(c.source, c.cron, c.interval_minutes, c.enabled) for c in changes] == [
        ("csa", "0 */4 * * *", None, False),
        ("violations", None, 5, True),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"interval_minutes": 4}, "5 to 1440, got 4"),
        ({"interval_minutes": 1441}, "5 to 1440, got 1441"),
        ({"interval_minutes": -1}, "5 to 1440"),
        ({"cron": "not a cron"}, "5 fields"),
        ({"cron": "61 * * * *"}, "not valid"),
        ({"cron": "*/2 * * * *"}, "2 minute(s) apart"),
        ({"interval_minutes": 60, "cron": "0 * * * *"}, "exactly one"),
        ({}, "exactly one"),
        ({"interval_minutes": "sixty"}, "interval_minutes"),
        ({"interval_minutes": 60, "when": "now"}, "when"),
    ],
)
async def test_a_schedule_outside_the_rules_is_422_with_the_reason(
    lone_gateway: Any, bearer: Any, body: dict[str, Any], reason: str
) -> None:
    answer = await lone_gateway.client.put(
        "/api/schedules/inspections", json=body, headers=bearer(Role.ADMIN)
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert reason in problem["detail"] or any(
        reason in e["field"] + e["reason"] for e in problem.get("errors") or []
    )
    assert await lone_gateway.events() == []


async def test_the_page_form_shows_the_reason_then_saves_a_valid_schedule(
    lone_gateway: Any, bearer: Any
) -> None:
    admin = bearer(Role.ADMIN)
    form = {"mode": "interval", "interval_minutes": "1441", "enabled": "on"}
    answer = await lone_gateway.client.put("/ui/schedules/csa", data=form, headers=admin)
    assert answer.status_code == 422
    assert "interval_minutes must be 5 to 1440, got 1441" in answer.text
    form = {"mode": "cron", "cron": "*/1 * * * *", "enabled": "on"}
    answer = await lone_gateway.client.put("/ui/schedules/csa", data=form, headers=admin)
    assert "1 minute(s) apart" in answer.text
    form = {"mode": "interval", "interval_minutes": "ten", "enabled": "on"}
    assert (
        "whole number" in (await lone_gateway.client.put("/ui/schedules/csa", data=form, headers=admin)).text
    )
    form = {"mode": "interval", "interval_minutes": "30"}
    answer = await lone_gateway.client.put("/ui/schedules/csa", data=form, headers=admin)
    assert answer.status_code == 200
    assert "saved" in answer.text
    changes = [e for _, e, _ in await lone_gateway.events() if isinstance(e, ScheduleChanged)]
    assert [(c.interval_minutes, c.enabled) for c in changes] == [(30, False)]


async def test_scheduler_status_comes_from_its_heartbeat_and_goes_stale(
    lone_gateway: Any, bearer: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    status = (await lone_gateway.client.get("/api/scheduler/status", headers=viewer)).json()
    assert (status["known"], status["running"]) == (False, False)
    now = datetime.now(UTC)
    document = {
        "replica": "scheduler-1",
        "enabled": True,
        "running": True,
        "ready": True,
        "heartbeat_at": now.isoformat(),
        "started_at": (now - timedelta(minutes=5)).isoformat(),
        "last_tick_at": now.isoformat(),
        "checkpoint_at": now.isoformat(),
        "companies": 3,
        "due": 1,
        "in_flight": 2,
        "skipped": {"in_flight": 1},
        "rejected_schedules": 0,
        "undecodable_events": 0,
        "sources": {
            "csa": {
                "enabled": True,
                "interval_minutes": 360,
                "cron": None,
                "schedule_since": None,
                "next_due_at": (now + timedelta(minutes=3)).isoformat(),
                "next_slot_at": None,
                "due": 1,
                "published": 4,
                "in_flight": 2,
                "backing_off": 0,
                "skipped": {},
            }
        },
    }
    nc = await nats.connect(lone_gateway.nats_url)
    try:
        state = await nc.jetstream().key_value(STATE_BUCKET)
        await state.put("scheduler.status", json.dumps(document).encode())
        status = (await lone_gateway.client.get("/api/scheduler/status", headers=viewer)).json()
        assert (status["known"], status["running"], status["stale"], status["replica"]) == (
            True,
            True,
            False,
            "scheduler-1",
        )
        assert status["sources"]["csa"]["next_due_at"] is not None
        assert status["in_flight"] == 2
        page = await lone_gateway.client.get("/ui/scheduler", headers=viewer)
        assert "running" in page.text
        assert "every 360 min" in page.text
        document["heartbeat_at"] = (now - timedelta(minutes=5)).isoformat()
        await state.put("scheduler.status", json.dumps(document).encode())
        status = (await lone_gateway.client.get("/api/scheduler/status", headers=viewer)).json()
        assert (status["running"], status["stale"]) == (False, True)
        await state.put("scheduler.status", b"not json")
        assert (await lone_gateway.client.get("/api/scheduler/status", headers=viewer)).json()[
            "known"
        ] is False
    finally:
        await nc.close()


async def test_the_scheduler_card_says_when_a_source_cannot_keep_its_companies_fresh(
    lone_gateway: Any, bearer: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    now = datetime.now(UTC)
    message = "csa: 100,000 companies need 27.8 h a cycle at 1 sync/s; interval 6 h"
    csa = {
        "enabled": True,
        "interval_minutes": 360,
        "cron": None,
        "schedule_since": None,
        "next_due_at": None,
        "next_slot_at": None,
        "due": 0,
        "published": 1440,
        "in_flight": 1440,
        "backing_off": 0,
        "skipped": {},
    }
    capacity = {"waiting": 98_000, "in_flight_cap": 1440, "syncs_per_s": 1.0, "behind": True}
    document = {
        **_heartbeat(now),
        "companies": 100_000,
        "sources": {"csa": {**csa, **capacity, "capacity_message": message}},
        "capacity_warnings": [message],
    }
    nc = await nats.connect(lone_gateway.nats_url)
    try:
        state = await nc.jetstream().key_value(STATE_BUCKET)
        await state.put("scheduler.status", json.dumps(document).encode())
        status = (await lone_gateway.client.get("/api/scheduler/status", headers=viewer)).json()
        assert status["capacity_warnings"] == [message]
        assert status["sources"]["csa"]["in_flight_cap"] == 1440
        page = (await lone_gateway.client.get("/ui/scheduler", headers=viewer)).text
        assert f"Not enough capacity: {message}" in page
        assert "1 sync/s · cap 1440 · 98000 waiting" in page
    finally:
        await nc.close()


def _heartbeat(now: datetime) -> dict[str, Any]:
    return {
        "replica": "scheduler-1",
        "enabled": True,
        "running": True,
        "ready": True,
        "heartbeat_at": now.isoformat(),
        "started_at": now.isoformat(),
        "last_tick_at": now.isoformat(),
        "checkpoint_at": now.isoformat(),
        "due": 0,
        "in_flight": 1440,
        "skipped": {},
        "rejected_schedules": 0,
        "undecodable_events": 0,
    }


async def test_the_admin_page_shows_each_sources_shared_upstream_pace(lone_gateway: Any, bearer: Any) -> None:
    from fmcsa_source_kit.pacing import UpstreamPace

    viewer = bearer(Role.VIEWER)
    empty = await lone_gateway.client.get("/ui/pace", headers=viewer)
    assert "No source has reported its pace yet" in empty.text
    nc = await nats.connect(lone_gateway.nats_url)
    replicas = [
        UpstreamPace(source="csa", base_url="https://mobile.fmcsa.dot.gov/qc", ceiling=20.0, replica=name)
        for name in ("a", "b")
    ]
    try:
        for replica in replicas:
            await replica.start(nc.jetstream(), sync_s=0.05, heartbeat_s=0.1)
        replicas[0]._answered(replicas[0]._wall(), 429, {})
        await replicas[0]._sync()
        page = await lone_gateway.client.get("/ui/pace", headers=viewer)
        assert page.status_code == 200
        row = page.text.split("<tbody>")[1]
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in row.split("</td>")][:8]
        assert cells == ["csa", "mobile_fmcsa_dot_gov_qc", "10.00/s", "20.00/s", "20.00/s", "1", "2", "0.0 s"]
    finally:
        for replica in replicas:
            await replica.stop()
        await nc.close()
