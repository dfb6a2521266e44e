"""The change feed through the gateway and the real projector: `GET /api/changes` (filters, newest first,
cursor pages), `GET /api/companies/{dot}/history`, next due on the status, and the edge's 422s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CarrierDataChanged,
    ChangeKind,
    Counts,
    Event,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_runtime.tokens import Role

WATCHED, OTHER, QUIET = "99700001", "2847193", "1234567"
OCTOBER = datetime(2026, 10, 30, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 27, tzinfo=UTC)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _csa_summary(driving: str, maintenance: str | None) -> dict[str, Any]:
    def basic(basics_id: int, percentile: str | None, measure: str) -> dict[str, Any]:
        return {
            "id": basics_id,
            "percentile": percentile,
            "percentile_status": "public" if percentile is not None else "not_public",
            "measure": measure,
            "threshold": 65,
        }

    return {"basics": [basic(11, driving, "1.87"), basic(15, maintenance, "2.24")]}


def _request(dot: str, source: SourceKey, at: datetime, trigger: Trigger) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source=source,
        trigger=trigger,
        requested_by="scheduler" if trigger is not Trigger.MANUAL else "alice",
        requested_at=at,
        deadline=at + timedelta(minutes=30),
        slot=at if trigger is not Trigger.MANUAL else None,
    )


def _synced(request: SyncRequested, as_of: datetime, summary: dict[str, Any]) -> SourceSynced:
    return SourceSynced(
        request_id=request.request_id,
        dot=request.dot,
        source=request.source,
        counts=Counts(fetched=1, inserted=0, updated=1, unchanged=0),
        attempts=1,
        started_at=request.requested_at,
        finished_at=request.requested_at + timedelta(seconds=1),
        retrieved_at=request.requested_at + timedelta(seconds=1),
        upstream_as_of=as_of,
        summary=summary,
    )


def _change(
    request_id: UUID,
    dot: str,
    source: SourceKey,
    kind: ChangeKind,
    subject: str,
    before: Any,
    after: Any,
    observed_at: datetime,
) -> CarrierDataChanged:
    return CarrierDataChanged(
        request_id=request_id,
        dot=dot,
        source=source,
        kind=kind,
        subject=subject,
        before=before,
        after=after,
        upstream_as_of=NOVEMBER,
        observed_at=observed_at,
    )


def story() -> tuple[list[Event], list[tuple[str, str, str, str]]]:
    """Events for three companies: a csa baseline and a bump for WATCHED, changes of every source,
    and the feed's expected (dot, source, kind, subject) newest first.
    """
    baseline = _request(WATCHED, SourceKey.CSA, T0, Trigger.SCHEDULED)
    bumped = _request(WATCHED, SourceKey.CSA, T0 + timedelta(hours=6), Trigger.SCHEDULED)
    manual = _request(WATCHED, SourceKey.CSA, T0 + timedelta(hours=7), Trigger.MANUAL)
    violations = _request(OTHER, SourceKey.VIOLATIONS, T0 + timedelta(hours=6, minutes=5), Trigger.SCHEDULED)
    inspections = _request(OTHER, SourceKey.INSPECTIONS, T0 + timedelta(hours=6, minutes=9), Trigger.MANUAL)
    at = bumped.requested_at + timedelta(seconds=1)
    events: list[Event] = [
        baseline,
        _synced(baseline, OCTOBER, _csa_summary("45", "38")),
        bumped,
        _change(
            bumped.request_id,
            WATCHED,
            SourceKey.CSA,
            ChangeKind.BASIC_PERCENTILE_CHANGED,
            "unsafe_driving",
            {"percentile": "45", "alert": False},
            {"percentile": "58", "alert": True},
            at,
        ),
        _change(
            bumped.request_id,
            WATCHED,
            SourceKey.CSA,
            ChangeKind.BASIC_ALERT_STARTED,
            "unsafe_driving",
            {"percentile": "45", "alert": False},
            {"percentile": "58", "alert": True},
            at,
        ),
        _change(
            bumped.request_id,
            WATCHED,
            SourceKey.CSA,
            ChangeKind.BASIC_BECAME_NOT_PUBLIC,
            "vehicle_maintenance",
            {"percentile": "38", "status": "public"},
            {"percentile": None, "status": "not_public"},
            at,
        ),
        _synced(bumped, NOVEMBER, _csa_summary("58", None)),
        violations,
        _change(
            violations.request_id,
            OTHER,
            SourceKey.VIOLATIONS,
            ChangeKind.VIOLATIONS_ADDED,
            "violations",
            {"count": 213, "oos_count": 20},
            {"count": 1, "oos_count": 1},
            violations.requested_at + timedelta(seconds=1),
        ),
        _synced(violations, NOVEMBER, {"total": 214, "oos": 21, "inspections": 213}),
        inspections,
        _change(
            inspections.request_id,
            OTHER,
            SourceKey.INSPECTIONS,
            ChangeKind.SAFETY_RATING_CHANGED,
            "safety_rating",
            {"rating": "SATISFACTORY"},
            {"rating": "CONDITIONAL"},
            inspections.requested_at + timedelta(seconds=1),
        ),
        _change(
            inspections.request_id,
            OTHER,
            SourceKey.INSPECTIONS,
            ChangeKind.OPERATING_STATUS_CHANGED,
            "operating_status",
            {"status": "ACTIVE"},
            {"status": "OUT-OF-SERVICE"},
            inspections.requested_at + timedelta(seconds=1),
        ),
        _synced(inspections, NOVEMBER, {}),
        manual,  # the newest csa request is manual: next due still counts from the scheduled one
    ]
    expected = [
        (OTHER, "inspections", "operating_status_changed", "operating_status"),
        (OTHER, "inspections", "safety_rating_changed", "safety_rating"),
        (OTHER, "violations", "violations_added", "violations"),
        (WATCHED, "csa", "basic_became_not_public", "vehicle_maintenance"),
        (WATCHED, "csa", "basic_alert_started", "unsafe_driving"),
        (WATCHED, "csa", "basic_percentile_changed", "unsafe_driving"),
    ]
    return events, expected


def _key(item: dict[str, Any]) -> tuple[str, str, str, str]:
    return item["dot_number"], item["source"], item["kind"], item["subject"]


async def _told(gateway: Any, wait_until: Any, headers: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """Register the companies, publish the story and wait until the view has folded all of it."""
    for dot in (WATCHED, OTHER, QUIET):
        answer = await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=headers)
        assert answer.status_code == 201, answer.text
    events, expected = story()
    await gateway.publish_folded(events, headers=headers, wait_until=wait_until)
    return expected


async def _all(gateway: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = await gateway.client.get("/api/changes", params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_the_feed_lists_changes_newest_first_with_filters_and_pages(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    expected = await _told(gateway, wait_until, bearer(Role.ADMIN))

    everything = await _all(gateway, viewer)
    assert [_key(c) for c in everything] == expected
    positions = [c["position"] for c in everything]
    assert positions == sorted(positions, reverse=True)
    alert = everything[4]
    assert alert["before"] == {"percentile": "45", "alert": False}
    assert alert["after"] == {"percentile": "58", "alert": True}
    assert alert["upstream_as_of"].startswith("2026-11-27")
    assert alert["event_id"].startswith(f"change:{alert['request_id']}:basic_alert_started")
    hidden = everything[3]
    assert hidden["after"] == {"percentile": None, "status": "not_public"}

    # pages of two, through the cursor, give the same feed
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await gateway.client.get("/api/changes", params=params, headers=viewer)).json()
        assert page["limit"] == 2
        assert len(page["items"]) <= 2
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == everything

    assert [_key(c) for c in await _all(gateway, viewer, dot=WATCHED)] == expected[3:]
    assert [_key(c) for c in await _all(gateway, viewer, dot=QUIET)] == []
    assert [_key(c) for c in await _all(gateway, viewer, source="inspections")] == expected[:2]
    assert [_key(c) for c in await _all(gateway, viewer, kind="violations_added")] == [expected[2]]
    assert [
        _key(c) for c in await _all(gateway, viewer, dot=WATCHED, source="csa", kind="basic_alert_started")
    ] == [expected[4]]
    since = (T0 + timedelta(hours=6, minutes=5)).isoformat()
    assert [_key(c) for c in await _all(gateway, viewer, since=since)] == expected[:3]
    assert await _all(gateway, viewer, since=(T0 + timedelta(days=30)).isoformat()) == []


async def test_history_gives_each_basic_by_as_of_date_and_404_for_an_unknown_company(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    await _told(gateway, wait_until, bearer(Role.ADMIN))

    answer = await gateway.client.get(f"/api/companies/{WATCHED}/history", headers=viewer)
    assert answer.status_code == 200, answer.text
    history = answer.json()
    assert (history["dot_number"], history["source"]) == (WATCHED, "csa")
    series = {s["subject"]: s["points"] for s in history["series"]}
    assert [(p["as_of"][:10], p["values"]) for p in series["unsafe_driving"]] == [
        ("2026-10-30", {"percentile": 45.0, "measure": 1.87}),
        ("2026-11-27", {"percentile": 58.0, "measure": 1.87}),
    ]
    assert [p["values"]["percentile"] for p in series["vehicle_maintenance"]] == [38.0, None]
    assert (
        await gateway.client.get(f"/api/companies/{WATCHED}/history?source=csa", headers=viewer)
    ).json() == history

    violations = await gateway.client.get(f"/api/companies/{OTHER}/history?source=violations", headers=viewer)
    assert violations.status_code == 200
    assert [s["subject"] for s in violations.json()["series"]] == ["violations"]
    quiet = await gateway.client.get(f"/api/companies/{QUIET}/history", headers=viewer)
    assert (quiet.status_code, quiet.json()["series"]) == (200, [])

    missing = await gateway.client.get("/api/companies/7654321/history", headers=viewer)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "7654321" in missing.json()["detail"]


async def test_status_says_when_each_source_is_next_due(gateway: Any, bearer: Any, wait_until: Any) -> None:
    viewer = bearer(Role.VIEWER)
    await _told(gateway, wait_until, bearer(Role.ADMIN))

    status = (await gateway.client.get(f"/api/companies/{WATCHED}/status", headers=viewer)).json()
    csa = status["sources"]["csa"]
    assert csa["last_trigger"] == "manual"
    assert csa["upstream_as_of"].startswith("2026-11-27")
    # the default schedule is every 360 minutes; the last scheduled request was at T0 + 6 h
    assert csa["next_due"] == {
        "at": (T0 + timedelta(hours=12)).isoformat().replace("+00:00", "Z"),
        "enabled": True,
        "within_minutes": 360,
    }
    other = (await gateway.client.get(f"/api/companies/{OTHER}/status", headers=viewer)).json()
    assert other["sources"]["inspections"]["next_due"] == {"at": None, "enabled": True, "within_minutes": 360}

    admin = bearer(Role.ADMIN)
    answer = await gateway.client.put("/api/schedules/csa", json={"cron": "0 */4 * * *"}, headers=admin)
    assert answer.status_code == 200, answer.text
    status = (await gateway.client.get(f"/api/companies/{WATCHED}/status", headers=viewer)).json()
    assert status["sources"]["csa"]["next_due"]["at"].startswith("2026-12-01T16:00:00")
    answer = await gateway.client.put(
        "/api/schedules/csa", json={"interval_minutes": 60, "enabled": False}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    status = (await gateway.client.get(f"/api/companies/{WATCHED}/status", headers=viewer)).json()
    assert status["sources"]["csa"]["next_due"] == {"at": None, "enabled": False, "within_minutes": None}


async def test_the_company_page_shows_the_timeline_and_the_trend_chart(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    await _told(gateway, wait_until, bearer(Role.ADMIN))
    page = await gateway.client.get(f"/ui/companies/{WATCHED}", headers=viewer)
    assert page.status_code == 200, page.text
    html = page.text
    assert f'id="timeline-{WATCHED}"' in html
    assert html.count('data-kind="') == 3
    assert "basic alert started" in html
    for shown in ("percentile: 45", "percentile: 58", "alert: no", "alert: yes", "percentile: none"):
        assert shown in html
    assert f'id="trend-chart-{WATCHED}"' in html
    assert html.count("<circle") == 3  # unsafe driving twice, vehicle maintenance once (then Not Public)
    assert 'data-next-due="csa"' in html
    quiet = await gateway.client.get(f"/ui/companies/{QUIET}", headers=viewer)
    assert "No changes seen yet" in quiet.text
    assert "No CSA percentiles yet" in quiet.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"kind": "basic_exploded"}, "query.kind"),
        ({"source": "fax"}, "query.source"),
        ({"dot": "1' OR '1'='1"}, "query.dot"),
        ({"dot": "123456789"}, "query.dot"),
        ({"since": "2026-11-01T00:00:00"}, "query.since"),
        ({"since": "yesterday"}, "query.since"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
    ],
)
async def test_refused_feed_filters_are_422_problems(
    lone_gateway: Any, bearer: Any, params: dict[str, Any], field: str
) -> None:
    answer = await lone_gateway.client.get("/api/changes", params=params, headers=bearer(Role.VIEWER))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in answer.json()["errors"]]


async def test_a_kind_of_another_source_is_an_empty_page(lone_gateway: Any, bearer: Any) -> None:
    params = {"source": "csa", "kind": "violations_added"}
    answer = await lone_gateway.client.get("/api/changes", params=params, headers=bearer(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == []
    assert answer.json()["next_cursor"] is None


async def test_history_refuses_a_bad_dot_or_source_and_needs_a_viewer(lone_gateway: Any, bearer: Any) -> None:
    viewer = bearer(Role.VIEWER)
    bad_dot = await lone_gateway.client.get("/api/companies/12a/history", headers=viewer)
    assert bad_dot.status_code == 422
    bad_source = await lone_gateway.client.get("/api/companies/123/history?source=fax", headers=viewer)
    assert bad_source.status_code == 422
    assert (await lone_gateway.client.get("/api/companies/123/history")).status_code == 401
    assert (await lone_gateway.client.get("/api/changes")).status_code == 401
    empty = await lone_gateway.client.get("/api/changes", headers=viewer)
    assert (empty.status_code, empty.json()["items"]) == (200, [])


async def test_a_risk_change_is_in_the_feed_under_the_source_that_moved_it(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    """`risk_changed` (the status service's, `fmcsa_status.publisher`) is a filter with any source, and the
    published documents list it (they follow `ChangeKind`)."""
    admin, viewer = bearer(Role.ADMIN), bearer(Role.VIEWER)
    moved = _request(OTHER, SourceKey.INSPECTIONS, T0, Trigger.MANUAL)
    red = {"light": "red", "reasons": [{"code": "rating_unsatisfactory", "light": "red", "text": "x"}]}
    risk = _change(
        moved.request_id, OTHER, SourceKey.INSPECTIONS, ChangeKind.RISK_CHANGED, "red",
        {"light": "yellow", "reasons": []}, red, T0 + timedelta(seconds=1),
    )  # fmt: skip
    await gateway.publish_folded([moved, risk], headers=admin, wait_until=wait_until)
    [item] = await _all(gateway, viewer, kind="risk_changed", source="inspections")
    assert (item["dot_number"], item["subject"], item["after"]) == (OTHER, "red", red)
    assert item["event_id"] == f"change:{moved.request_id}:risk_changed:red"
    assert await _all(gateway, viewer, kind="risk_changed", source="csa") == []
    for document in ("/schema/openapi.json", "/asyncapi.json"):
        answer = await gateway.client.get(document, headers=viewer)
        assert answer.status_code == 200, document
        assert "risk_changed" in answer.text, document
