"""Missing months, through the real projector: csa and violations successes whose upstream as-of dates
skip a month give `GET /api/companies/{dot}/gaps` and the company page one entry per missing month, each
saying whether the upstream still serves it and whether a later read backfilled it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Counts, SourceSynced, SyncRequested, Trigger
from fmcsa_runtime.tokens import Role

DOT = "2847193"


def month_back(today: date, months: int) -> datetime:
    index = today.year * 12 + today.month - 1 - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def synced(source: SourceKey, as_of: datetime, summary: dict[str, Any]) -> list[Any]:
    now = datetime.now(UTC)
    request = SyncRequested(
        request_id=uuid4(),
        dot=DOT,
        source=source,
        trigger=Trigger.MANUAL,
        requested_by="test",
        requested_at=now - timedelta(seconds=2),
        deadline=now + timedelta(minutes=30),
    )
    outcome = SourceSynced(
        request_id=request.request_id,
        dot=DOT,
        source=source,
        counts=Counts(fetched=1, inserted=1),
        attempts=1,
        started_at=now - timedelta(seconds=1),
        finished_at=now,
        retrieved_at=now,
        upstream_as_of=as_of,
        summary=summary,
    )
    return [request, outcome]


async def test_a_skipped_month_is_listed_with_whether_the_upstream_keeps_it(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer, admin = bearer(Role.VIEWER), bearer(Role.ADMIN)
    assert (
        await gateway.client.post("/api/companies", json={"dot_number": DOT}, headers=admin)
    ).status_code == 201
    today = datetime.now(UTC).date()
    basics = {"basics": [{"id": 11, "percentile": "45", "measure": "1.2"}]}
    events = [
        *synced(SourceKey.CSA, month_back(today, 4), basics),
        *synced(SourceKey.CSA, month_back(today, 3), basics),
        *synced(SourceKey.CSA, month_back(today, 1), basics),  # month_back(2) never read
        *synced(SourceKey.VIOLATIONS, month_back(today, 4) + timedelta(days=20), {"total": 2}),
        *synced(SourceKey.VIOLATIONS, month_back(today, 2) + timedelta(days=20), {"total": 3}),
    ]
    await gateway.publish_folded(events, headers=viewer, wait_until=wait_until)

    answer = await gateway.client.get(f"/api/companies/{DOT}/gaps", headers=viewer)
    assert answer.status_code == 200, answer.text
    gaps = answer.json()["gaps"]
    assert [
        (g["source"], g["month"], g["upstream_keeps_it"], g["state"], g["backfilled_by"]) for g in gaps
    ] == [
        ("csa", month_back(today, 2).date().isoformat(), False, "unrecoverable", None),
        # month_back(3) missed, its rows brought by month_back(2)'s read; month_back(1) not read yet
        (
            "violations",
            month_back(today, 3).date().isoformat(),
            True,
            "backfilled",
            month_back(today, 2).date().isoformat(),
        ),
        ("violations", month_back(today, 1).date().isoformat(), True, "pending", None),
    ]
    assert "cannot be read again" in gaps[0]["why"]

    page = (await gateway.client.get(f"/ui/companies/{DOT}", headers=viewer)).text
    assert f'data-gap="csa-{month_back(today, 2).date().isoformat()}"' in page
    assert "it cannot be recovered" in page
    assert "the upstream still serves it" in page
    assert (
        f'data-gap="violations-{month_back(today, 3).date().isoformat()}" data-gap-state="backfilled"' in page
    )
    assert f"its rows arrived with the read of {month_back(today, 2).strftime('%Y-%m')}" in page

    unknown = await gateway.client.get("/api/companies/1234567/gaps", headers=viewer)
    assert unknown.status_code == 404
    assert (await gateway.client.get(f"/api/companies/{DOT}/gaps")).status_code == 401
