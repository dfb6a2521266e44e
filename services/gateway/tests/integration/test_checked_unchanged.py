"""A sync that only checked the upstream's publication, through the real projector: the status, the sync
log and the page say "checked, unchanged since U" with when the data was fetched, apart from a fetch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import Counts, SourceSynced, SyncRequested, Trigger
from fmcsa_runtime.tokens import Role

DOT = "2847193"


def _request(at: datetime) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(),
        dot=DOT,
        source=SourceKey.VIOLATIONS,
        trigger=Trigger.MANUAL,
        requested_by="alice",
        requested_at=at,
        deadline=at + timedelta(minutes=30),
    )


async def test_a_checked_unchanged_success_is_shown_apart_from_a_fetch(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer, admin = bearer(Role.VIEWER), bearer(Role.ADMIN)
    answer = await gateway.client.post("/api/companies", json={"dot_number": DOT}, headers=admin)
    assert answer.status_code == 201, answer.text
    now = datetime.now(UTC).replace(microsecond=0)
    fetched_at, as_of = now - timedelta(days=2), datetime(2026, 11, 21, 9, 12, tzinfo=UTC)
    read, check = _request(fetched_at - timedelta(seconds=5)), _request(now - timedelta(seconds=5))
    base = {"dot": DOT, "source": SourceKey.VIOLATIONS, "attempts": 1, "upstream_as_of": as_of}
    events = [
        read,
        SourceSynced(
            request_id=read.request_id,
            counts=Counts(fetched=7, inserted=7),
            started_at=fetched_at - timedelta(seconds=1),
            finished_at=fetched_at,
            retrieved_at=fetched_at,
            summary={"total": 7},
            **base,
        ),
        check,
        SourceSynced(
            request_id=check.request_id,
            counts=Counts(),
            started_at=now - timedelta(seconds=1),
            finished_at=now,
            retrieved_at=fetched_at,
            summary={"total": 7},
            checked_unchanged=True,
            **base,
        ),
    ]
    await gateway.publish_folded(events, headers=viewer, wait_until=wait_until)

    status = (await gateway.client.get(f"/api/companies/{DOT}/status", headers=viewer)).json()
    violations = status["sources"]["violations"]
    assert violations["checked_unchanged"] is True
    assert violations["last_success_at"].startswith(now.strftime("%Y-%m-%dT%H:%M:%S"))
    assert violations["retrieved_at"].startswith(fetched_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert violations["summary"] == {"total": 7}
    log = (await gateway.client.get(f"/api/sync/log?dot_number={DOT}", headers=viewer)).json()["items"]
    assert {entry["request_id"]: entry["checked_unchanged"] for entry in log} == {
        str(read.request_id): False,
        str(check.request_id): True,
    }

    page = (await gateway.client.get(f"/ui/companies/{DOT}", headers=viewer)).text
    assert 'data-checked-unchanged="violations"' in page
    assert "checked: unchanged since 2026-11-21, fetched 2 d ago" in page
    assert "checked: the upstream published nothing newer" in page  # the check's sync-log row
    assert "7 fetched, 7 new" in page  # the read's row, as before
