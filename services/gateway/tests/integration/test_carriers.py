"""The carrier routes through the gateway and the real projector (SQLite and PostgreSQL): sources'
`SourceSynced` summaries published on the bus become `GET /api/carriers/{dot}` (the record and its risk
light), `GET /api/carriers/{dot}/violations` (filters, keyset pages) and `GET /api/carriers` (search by
DOT, docket and name prefix; the risk filter); problems for unknown DOTs and refused values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Counts, SourceSynced, SyncRequested, Trigger
from fmcsa_runtime.tokens import Role
from fmcsa_source_violations.domain.summary import paginate

DOT, OTHER, NEVER = "2847193", "1398452", "99700010"
AS_OF = datetime(2026, 10, 31, tzinfo=UTC)

CSA: dict[str, Any] = {
    "basics": [{"id": 11, "code": "UNSAFE", "name": "Unsafe Driving", "percentile": "72", "alert": True}],
    "alerts": [11],
    "legal_name": "Acme Freight Lines Inc",
    "dba_name": "ACME",
    "status_code": "A",
    "address": {"street": "4410 W INDUSTRIAL PKWY", "city": "DES MOINES", "state": "IA", "zip": "50321"},
    "allowed_to_operate": True,
    "out_of_service_date": None,
    "safety_rating": "satisfactory",
    "safety_rating_date": "2019-08-14",
    "authority": {"common": "active", "contract": "none", "broker": "none"},
    "inspections": {
        "driver": {"inspections": 9, "out_of_service": 0, "oos_rate": "0", "national_average": "5.51"},
        "vehicle": {"inspections": 6, "out_of_service": 1, "oos_rate": "16.67", "national_average": "20.72"},
        "hazmat": {"inspections": 0, "out_of_service": 0, "oos_rate": None, "national_average": "4.5"},
    },
    "crashes": {"total": 1, "fatal": 0, "injury": 0, "towaway": 1},
}
AUTHORITY: dict[str, Any] = {
    "authority": {"common": "active", "contract": "none", "broker": "none"},
    "dockets": ["MC-1034412"],
    "oos_order": None,
    "insurance": {"bipd_required": 750_000, "bipd_on_file": 1_000_000, "cargo_on_file": 0, "bond_on_file": 0,
                  "filings": 2, "next_cancellation": None},
}  # fmt: skip


def violation(n: int, day: str, basic: str | None, oos: bool) -> dict[str, Any]:
    return {
        "inspection": str(800 + n), "code": "3922SLLS2", "unit": "D", "ordinal": 0, "date": f"2026-{day}",
        "basic": basic, "oos": oos, "severity": 5, "group": "Speeding", "description": "Speeding 6-10 mph",
    }  # fmt: skip


VIOLATIONS: dict[str, Any] = {
    "total": 5, "oos": 2, "inspections": 5, "per_basic": {"unsafe_driving": 3, "vehicle_maintenance": 2},
    "oos_per_basic": {"vehicle_maintenance": 2}, "latest_inspection_date": "2026-09-20",
    "upstream_as_of": None,
    "rows": [
        violation(1, "09-20", "unsafe_driving", False),
        violation(2, "08-02", "vehicle_maintenance", True),
        violation(3, "06-15", "unsafe_driving", False),
        violation(4, "03-01", "vehicle_maintenance", True),
        violation(5, "01-10", "unsafe_driving", False),
    ],
    "rows_complete": True,
}  # fmt: skip


def synced(dot: str, source: SourceKey, summary: dict[str, Any]) -> list[Any]:
    now = datetime.now(UTC)
    request = SyncRequested(
        request_id=uuid4(), dot=dot, source=source, trigger=Trigger.MANUAL, requested_by="test",
        requested_at=now - timedelta(seconds=2), deadline=now + timedelta(minutes=30),
    )  # fmt: skip
    outcome = SourceSynced(
        request_id=request.request_id, dot=dot, source=source, counts=Counts(fetched=1, inserted=1),
        attempts=1, started_at=now - timedelta(seconds=1), finished_at=now, retrieved_at=now,
        upstream_as_of=AS_OF, summary=summary,
    )  # fmt: skip
    return [request, outcome]


async def test_the_record_its_violations_and_the_search(gateway: Any, bearer: Any, wait_until: Any) -> None:
    admin, viewer = bearer(Role.ADMIN), bearer(Role.VIEWER)
    for dot in (DOT, NEVER):
        answer = await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=admin)
        assert answer.status_code == 201, answer.text
    red = {**CSA, "legal_name": "Bolt Carriers LLC", "alerts": [], "safety_rating": "unsatisfactory"}
    events = [
        *synced(DOT, SourceKey.CSA, CSA),
        *synced(DOT, SourceKey.AUTHORITY, AUTHORITY),
        *synced(DOT, SourceKey.VIOLATIONS, VIOLATIONS),
        *synced(OTHER, SourceKey.CSA, red),
    ]
    await gateway.publish_folded(events, headers=viewer, wait_until=wait_until)

    answer = await gateway.client.get(f"/api/carriers/{DOT}", headers=viewer)
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["dot_number"] == DOT
    assert record["legal_name"] == "Acme Freight Lines Inc"
    assert record["identity"]["address"] == "4410 W INDUSTRIAL PKWY, DES MOINES, IA 50321"
    assert record["identity"]["source"] == "csa"
    assert record["identity"]["upstream_as_of"] == "2026-10-31T00:00:00Z"
    assert record["identity"]["retrieved_at"] is not None
    assert record["oos_rates"]["vehicle"] == {
        "inspections": 6, "out_of_service": 1, "rate": "16.67", "national_average": "20.72"
    }  # fmt: skip
    assert record["authority"]["source"] == "authority"
    assert record["authority"]["dockets"] == ["MC-1034412"]
    assert record["insurance"]["bipd_on_file"] == 1_000_000
    assert record["violations"]["total"] == 5
    assert record["violations"]["complete"] is True
    assert record["risk"] == {
        "light": "yellow",
        "reasons": [{"code": "basic_alert", "light": "yellow", "text": "Unsafe Driving: in alert."}],
    }
    assert set(record["sources"]) == {"csa", "authority", "violations"}

    never = (await gateway.client.get(f"/api/carriers/{NEVER}", headers=viewer)).json()
    assert never["risk"]["light"] == "unknown"
    assert never["identity"] is None
    unknown = await gateway.client.get("/api/carriers/1234567", headers=viewer)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    for bad in ("00000000", "123456789", "12a"):
        refused = await gateway.client.get(f"/api/carriers/{bad}", headers=viewer)
        assert refused.status_code == 422, bad
    assert (await gateway.client.get(f"/api/carriers/{DOT}")).status_code == 401

    path = f"/api/carriers/{DOT}/violations"
    first = (await gateway.client.get(path, params={"limit": 2}, headers=viewer)).json()
    assert [v["inspection"] for v in first["items"]] == ["801", "802"]
    assert first["complete"] is True
    assert first["items"][0] == {
        "inspection": "801", "code": "3922SLLS2", "unit": "D", "ordinal": 0, "inspected_on": "2026-09-20",
        "basic": "unsafe_driving", "oos": False, "severity": 5, "group": "Speeding",
        "description": "Speeding 6-10 mph",
    }  # fmt: skip
    seen = [v["inspection"] for v in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await gateway.client.get(path, params={"limit": 2, "cursor": cursor}, headers=viewer)).json()
        seen += [v["inspection"] for v in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ["801", "802", "803", "804", "805"]
    oos = (await gateway.client.get(path, params={"oos": "true"}, headers=viewer)).json()
    assert [v["inspection"] for v in oos["items"]] == ["802", "804"]
    window = {"basic": "unsafe_driving", "from": "2026-02-01", "to": "2026-09-20"}
    ranged = (await gateway.client.get(path, params=window, headers=viewer)).json()
    assert [v["inspection"] for v in ranged["items"]] == ["801", "803"]
    assert (await gateway.client.get(path, params={"basic": "nope"}, headers=viewer)).status_code == 422
    assert (await gateway.client.get(path, params={"cursor": "zz"}, headers=viewer)).status_code == 422
    assert (await gateway.client.get("/api/carriers/1234567/violations", headers=viewer)).status_code == 404
    empty = (await gateway.client.get(f"/api/carriers/{NEVER}/violations", headers=viewer)).json()
    assert (empty["items"], empty["complete"]) == ([], None)

    async def found(**params: str) -> list[str]:
        answer = await gateway.client.get("/api/carriers", params=params, headers=viewer)
        assert answer.status_code == 200, answer.text
        return [c["dot_number"] for c in answer.json()["items"]]

    assert await found(q="acme") == [DOT]
    assert await found(q="ACME FREIGHT") == [DOT]
    assert await found(q="mc1034412") == [DOT]
    assert await found(q="MC-1034412") == [DOT]
    assert await found(q=OTHER) == [OTHER]
    assert await found(q="freight") == []  # a prefix, not a substring
    assert await found(q="%") == []
    assert await found(risk="red") == [OTHER]
    assert await found(risk="yellow") == [DOT]
    assert await found() == [OTHER, DOT]  # by DOT number
    first_page = (await gateway.client.get("/api/carriers", params={"limit": 1}, headers=viewer)).json()
    assert first_page["items"][0]["risk"]["reasons"][0]["code"] == "rating_unsatisfactory"
    second = await gateway.client.get(
        "/api/carriers", params={"limit": 1, "cursor": first_page["next_cursor"]}, headers=viewer
    )
    assert [c["dot_number"] for c in second.json()["items"]] == [DOT]

    async def companies(risk: str) -> list[str]:
        answer = await gateway.client.get("/api/companies", params={"risk": risk}, headers=viewer)
        assert answer.status_code == 200, answer.text
        return [c["dot_number"] for c in answer.json()["items"]]

    # the company list filters on the light too; OTHER has a record but is not registered
    assert await companies("yellow") == [DOT]
    assert await companies("unknown") == [NEVER]  # registered, no source succeeded: no record yet
    assert await companies("red") == []
    listed = await gateway.client.get("/api/companies", params={"risk": "purple"}, headers=viewer)
    assert listed.status_code == 422
    for bad in ({"q": "x" * 101}, {"q": "a\x01b"}, {"q": ""}, {"risk": "purple"}, {"cursor": "zz"}):
        refused = await gateway.client.get("/api/carriers", params=bad, headers=viewer)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"].startswith("application/problem+json")


async def test_more_than_500_violations_are_paged_not_cut(gateway: Any, bearer: Any, wait_until: Any) -> None:
    """720 rows, cut by the violations source's own `paginate` into the outcome's 500 and pages of the
    rest (published before it, as the runner does): every row comes back through the keyset pages, in
    order, and the record says all 720 are listed and complete."""
    viewer = bearer(Role.VIEWER)
    rows = [
        violation(n, f"{1 + n % 12:02d}-{1 + n % 28:02d}", "unsafe_driving", n % 4 == 0) for n in range(720)
    ]
    rows.sort(key=lambda r: (r["date"], r["inspection"]), reverse=True)
    summary = {**VIOLATIONS, "total": 720, "oos": 180, "rows": rows, "rows_total": 720}
    request, outcome = synced(DOT, SourceKey.VIOLATIONS, summary)
    cut, pages = paginate(outcome)
    assert len(pages) >= 1
    assert len(cut.summary["rows"]) == 500  # type: ignore[arg-type]
    await gateway.publish_folded([request, *pages, cut], headers=viewer, wait_until=wait_until)

    record = (await gateway.client.get(f"/api/carriers/{DOT}", headers=viewer)).json()
    assert (record["violations"]["total"], record["violations"]["listed"]) == (720, 720)
    assert record["violations"]["complete"] is True
    path, seen, cursor = f"/api/carriers/{DOT}/violations", [], None
    while True:
        params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = (await gateway.client.get(path, params=params, headers=viewer)).json()
        assert page["complete"] is True
        seen += [v["inspection"] for v in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [r["inspection"] for r in rows]
    oos = (await gateway.client.get(path, params={"oos": "true", "limit": 500}, headers=viewer)).json()
    assert len(oos["items"]) == 180
