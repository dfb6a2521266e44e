"""Exports of the company list, the change feed and the sync log (`?format=csv|jsonl` or `Accept`),
through the gateway and the real projector: every matching item (not one page) with the route's
filters, the CSV equal to the JSON items field by field, formula-looking text neutralised, the JSON
answers unchanged, a bad format a 422 problem, and no token a 401.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CarrierDataChanged,
    ChangeKind,
    CompanyRegistered,
    Counts,
    ErrorKind,
    Event,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)
from fmcsa_runtime.tokens import Role

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NAMES = {
    "1000001": '=HYPERLINK("http://evil.example","x")',
    "1000002": "+1+2",
    "1000003": "-3+4",
    "1000004": "@SUM(A1:A9)",
    "1000005": "Plain Carrier, Inc.",
}
MORE = [str(n) for n in range(1000010, 1000022)]  # never requested


def _request(dot: str, source: SourceKey, at: datetime) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(),
        dot=dot,
        source=source,
        trigger=Trigger.MANUAL,
        requested_by="=cmd|' /C calc'!A0",  # a formula in free text that reaches the sync log
        requested_at=at,
        deadline=at + timedelta(minutes=30),
    )


def _events() -> list[Event]:
    events: list[Event] = [CompanyRegistered(dot=dot, name=name) for dot, name in NAMES.items()]
    events += [CompanyRegistered(dot=dot) for dot in MORE]
    for i, dot in enumerate(NAMES):
        at = T0 + timedelta(minutes=i)
        ok = _request(dot, SourceKey.CSA, at)
        bad = _request(dot, SourceKey.AUTHORITY, at)
        events += [
            ok,
            CarrierDataChanged(
                request_id=ok.request_id,
                dot=dot,
                source=SourceKey.CSA,
                kind=ChangeKind.BASIC_PERCENTILE_CHANGED,
                subject="unsafe_driving",
                before=-40,
                after={"percentile": 80, "note": "=1+1"},
                upstream_as_of=T0,
                observed_at=at + timedelta(seconds=1),
            ),
            SourceSynced(
                request_id=ok.request_id,
                dot=dot,
                source=SourceKey.CSA,
                counts=Counts(fetched=3, inserted=1, updated=1, unchanged=1),
                attempts=1,
                started_at=at,
                finished_at=at + timedelta(seconds=2),
                retrieved_at=at + timedelta(seconds=2),
                upstream_as_of=T0 - timedelta(days=3),
                summary={"basics": []},
            ),
            bad,
            SourceFailed(
                request_id=bad.request_id,
                dot=dot,
                source=SourceKey.AUTHORITY,
                kind=ErrorKind.UPSTREAM_ERROR,
                retryable=True,
                attempts=2,
                message="-the upstream answered 502",
                started_at=at,
                finished_at=at + timedelta(seconds=3),
            ),
        ]
    return events


def _cell(value: Any) -> str:
    """What the CSV must hold for a JSON value (the documented rules, written out independently)."""
    if value is None:
        return ""
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, list):
        value = ";".join(value)
    elif isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"))
    elif not isinstance(value, str):
        return str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _jsonl(text: str) -> list[Any]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


async def _all_pages(client: Any, path: str, params: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await client.get(
            path, params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def _seeded(gateway: Any, viewer: dict[str, str], wait_until: Any) -> None:
    await gateway.publish_folded(_events(), headers=viewer, wait_until=wait_until)


async def test_the_company_list_exports_every_company_with_its_status_and_key_facts(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    await _seeded(gateway, viewer, wait_until)
    client = gateway.client
    everyone = await _all_pages(client, "/api/companies", {}, viewer)
    assert len(everyone) == len(NAMES) + len(MORE)

    answer = await client.get("/api/companies", params={"format": "csv"}, headers=viewer)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="companies.csv"'
    rows = _csv(answer.text)
    assert [r["dot_number"] for r in rows] == [c["dot_number"] for c in everyone]  # every one, in order
    assert list(rows[0])[:10] == [
        "dot_number",
        "name",
        "active",
        "registered_at",
        "success",
        "failing",
        "never_synced",
        "failing_sources",
        "last_run",
        "last_success_at",
    ]
    for row, item in zip(rows, everyone, strict=True):
        for field in list(rows[0])[:10]:
            assert row[field] == _cell(item[field]), (field, row, item)
        for source in SourceKey:
            badge = item["sources"].get(source.value) or {}
            for field in ("state", "failing", "last_finished_at", "last_success_at", "upstream_as_of"):
                assert row[f"{source.value}_{field}"] == _cell(badge.get(field)), (source, field, row)
    by_dot = {r["dot_number"]: r for r in rows}
    assert by_dot["1000001"]["name"].startswith("'=HYPERLINK")  # formula injection neutralised
    assert by_dot["1000002"]["name"] == "'+1+2"
    assert by_dot["1000003"]["name"] == "'-3+4"
    assert by_dot["1000004"]["name"] == "'@SUM(A1:A9)"
    assert by_dot["1000005"]["name"] == "Plain Carrier, Inc."
    assert by_dot["1000001"]["csa_state"] == "succeeded"
    assert by_dot["1000001"]["authority_state"] == "failed"
    assert by_dot["1000001"]["failing_sources"] == "authority"
    assert by_dot["1000001"]["csa_upstream_as_of"] == _cell(everyone[0]["sources"]["csa"]["upstream_as_of"])
    assert by_dot["1000010"]["csa_state"] == ""  # never requested: empty cells

    # the filters of the JSON route; Accept chooses the format too
    failing = await _all_pages(client, "/api/companies", {"failing": "true"}, viewer)
    assert {c["dot_number"] for c in failing} == set(NAMES)
    answer = await client.get(
        "/api/companies", params={"failing": "true"}, headers={**viewer, "Accept": "text/csv"}
    )
    assert [r["dot_number"] for r in _csv(answer.text)] == [c["dot_number"] for c in failing]
    answer = await client.get(
        "/api/companies",
        params={"never_synced": "true", "source": "csa"},
        headers={**viewer, "Accept": "application/x-ndjson"},
    )
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.headers["content-disposition"] == 'attachment; filename="companies.jsonl"'
    assert _jsonl(answer.text) == await _all_pages(
        client, "/api/companies", {"never_synced": "true", "source": "csa"}, viewer
    )
    answer = await client.get("/api/companies", params={"format": "jsonl"}, headers=viewer)
    assert _jsonl(answer.text) == everyone

    # the JSON answer is as before: one page, with or without `format=json`
    for params in ({"limit": 2}, {"limit": 2, "format": "json"}):
        page = await client.get("/api/companies", params=params, headers=viewer)
        assert page.headers["content-type"] == "application/json"
        assert page.json()["items"] == everyone[:2]
        assert page.json()["next_cursor"]


async def test_the_change_feed_and_the_sync_log_export_every_matching_item(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer = bearer(Role.VIEWER)
    await _seeded(gateway, viewer, wait_until)
    client = gateway.client

    for path, params, name in (
        ("/api/changes", {}, "changes"),
        ("/api/changes", {"dot": "1000002", "source": "csa"}, "changes"),
        ("/api/sync/log", {}, "sync-log"),
        ("/api/sync/log", {"status": "failed", "source": "authority"}, "sync-log"),
        ("/api/sync/log", {"dot": "1000003", "since": T0.isoformat()}, "sync-log"),
    ):
        items = await _all_pages(client, path, params, viewer)
        assert items, (path, params)
        answer = await client.get(path, params={**params, "format": "csv"}, headers=viewer)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-disposition"] == f'attachment; filename="{name}.csv"'
        rows = _csv(answer.text)
        assert len(rows) == len(items), (path, params)
        for row, item in zip(rows, items, strict=True):
            flat: dict[str, Any] = {}
            for key, value in item.items():
                if key in ("counts", "retry"):  # nested objects: one column per field
                    for sub in row:
                        if sub.startswith(f"{key}_"):
                            flat[sub] = (value or {}).get(sub.removeprefix(f"{key}_"))
                else:
                    flat[key] = value
            assert set(row) == set(flat), set(row) ^ set(flat)
            for key, value in flat.items():
                assert row[key] == _cell(value), (path, key, row[key], value)
        answer = await client.get(path, params=params, headers={**viewer, "Accept": "application/x-ndjson"})
        assert answer.headers["content-disposition"] == f'attachment; filename="{name}.jsonl"'
        assert _jsonl(answer.text) == items

    changes = _csv((await client.get("/api/changes", params={"format": "csv"}, headers=viewer)).text)
    assert {r["before"] for r in changes} == {"-40"}  # a number, not text: written as it is
    assert {r["after"] for r in changes} == {'{"note":"=1+1","percentile":80}'}
    log = _csv((await client.get("/api/sync/log", params={"format": "csv"}, headers=viewer)).text)
    assert {r["requested_by"] for r in log} == {"'=cmd|' /C calc'!A0"}
    assert {r["error_message"] for r in log if r["status"] == "failed"} == {"'-the upstream answered 502"}
    assert {r["counts_fetched"] for r in log if r["status"] == "succeeded"} == {"3"}

    # a kind of another source matches nothing: a header only
    answer = await client.get(
        "/api/changes",
        params={"source": "authority", "kind": "basic_percentile_changed", "format": "csv"},
        headers=viewer,
    )
    assert answer.text.splitlines()[0].startswith("position,event_id,request_id,dot_number")
    assert _csv(answer.text) == []


async def test_an_export_needs_a_token_and_a_known_format(lone_gateway: Any, bearer: Any) -> None:
    viewer = bearer(Role.VIEWER)
    for path in ("/api/companies", "/api/changes", "/api/sync/log"):
        answer = await lone_gateway.client.get(path, params={"format": "csv"})
        assert answer.status_code == 401
        answer = await lone_gateway.client.get(path, headers={"Accept": "text/csv"})
        assert answer.status_code == 401
        answer = await lone_gateway.client.get(path, params={"format": "xlsx"}, headers=viewer)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == "query.format"
        if path != "/api/companies":
            bad = {"format": "csv", "dot": "0"}
            answer = await lone_gateway.client.get(path, params=bad, headers=viewer)
            assert answer.status_code == 422  # the filters are checked before the stream starts
            assert answer.headers["content-type"] == "application/problem+json"
        answer = await lone_gateway.client.get(path, params={"format": "csv"}, headers=viewer)
        assert answer.status_code == 200  # an empty store: a header row only
        assert len(answer.text.splitlines()) == 1
