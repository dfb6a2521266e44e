"""Honest progress while retrying, through the real projector: while a request waits for its next
attempt, the status, the sync log and the page say attempt n of m, the last error kind and when the next
attempt is due (never "running" and "all sources healthy"); once answered, "took" runs from the first
attempt to the outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    Counts,
    ErrorKind,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
)
from fmcsa_runtime.tokens import Role

DOT = "2847193"


async def test_a_request_between_attempts_shows_attempt_n_of_m_and_took_counts_from_the_first(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    viewer, admin = bearer(Role.VIEWER), bearer(Role.ADMIN)
    answer = await gateway.client.post("/api/companies", json={"dot_number": DOT}, headers=admin)
    assert answer.status_code == 201, answer.text
    now = datetime.now(UTC).replace(microsecond=0)
    request = SyncRequested(
        request_id=uuid4(),
        dot=DOT,
        source=SourceKey.CSA,
        trigger=Trigger.MANUAL,
        requested_by="alice",
        requested_at=now - timedelta(seconds=70),
        deadline=now + timedelta(minutes=30),
    )
    first_attempt = now - timedelta(seconds=65)
    progress = [
        SyncAttemptFailed(
            request_id=request.request_id,
            dot=DOT,
            source=SourceKey.CSA,
            attempt=attempt,
            max_attempts=5,
            kind=ErrorKind.UPSTREAM_ERROR,
            message="upstream answered 500",
            retry_at=now + timedelta(seconds=20 * attempt),
            first_attempt_at=first_attempt,
        )
        for attempt in (1, 2)
    ]
    await gateway.publish_folded([request, *progress], headers=viewer, wait_until=wait_until)

    status = (await gateway.client.get(f"/api/companies/{DOT}/status", headers=viewer)).json()
    csa = status["sources"]["csa"]
    assert csa["state"] == "requested"
    assert csa["retry"]["attempt"] == 2
    assert csa["retry"]["max_attempts"] == 5
    assert csa["retry"]["kind"] == "upstream_error"
    assert csa["retry"]["next_attempt_at"].startswith(
        (now + timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%S")
    )
    listed = (await gateway.client.get("/api/companies", headers=viewer)).json()["items"]
    assert listed[0]["sources"]["csa"]["retry"]["attempt"] == 2
    (entry,) = (await gateway.client.get(f"/api/sync/log?dot_number={DOT}", headers=viewer)).json()["items"]
    assert entry["status"] == "requested"
    assert entry["retry"] == csa["retry"]

    page = (await gateway.client.get(f"/ui/companies/{DOT}", headers=viewer)).text
    assert "all sources healthy" not in page
    assert 'data-retrying="csa"' in page
    assert "retrying: attempt 2 of 5 failed (upstream_error), next attempt" in page
    assert "retrying 2/5" in page  # the badge and the log row

    outcome = SourceSynced(
        request_id=request.request_id,
        dot=DOT,
        source=SourceKey.CSA,
        counts=Counts(fetched=1, inserted=1),
        attempts=3,
        started_at=first_attempt,
        finished_at=now,
        retrieved_at=now,
    )
    await gateway.publish_folded([outcome], headers=viewer, wait_until=wait_until)
    status = (await gateway.client.get(f"/api/companies/{DOT}/status", headers=viewer)).json()
    assert status["sources"]["csa"]["retry"] is None
    (entry,) = (await gateway.client.get(f"/api/sync/log?dot_number={DOT}", headers=viewer)).json()["items"]
    assert (entry["status"], entry["retry"], entry["duration_ms"]) == ("succeeded", None, 65_000)
    page = (await gateway.client.get(f"/ui/companies/{DOT}", headers=viewer)).text
    assert "all sources healthy" in page
    assert "65000 ms" in page
