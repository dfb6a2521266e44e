"""The status GET answers byte for byte what it answered before issue 26's optimizations (the guard of
every change to its path: auth, the view's read, building and encoding the answer, middleware).

Companies in varied states are folded by the real store (`fmcsa_status.store.StatusStore`, in-process:
no projector child) from events with fixed ids and times; the gateway reads them and each answer (status,
every header, the body's bytes) must equal the one recorded in `status_answers.json`: a change of field
order, a null, a datetime's format or a header shows. Also the 404, the 422 and a refused token.

The recorded answers were made by the code before the optimizations. To record them again (only for an
intended change of the answer, reviewed in the diff): `STATUS_ANSWERS_WRITE=/tmp/answers.json` runs the
test writing there instead of comparing; copy the file over `status_answers.json`.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar.testing import AsyncTestClient

from fmcsa_events.consume import Delivered
from fmcsa_events.decoder import decode, encode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CarrierDataChanged,
    ChangeKind,
    CompanyRegistered,
    CompanyRemoved,
    Counts,
    ErrorKind,
    Event,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
)
from fmcsa_events.subjects import subject_for
from fmcsa_gateway.app import create_app
from fmcsa_gateway.settings import Settings
from fmcsa_runtime.tokens import Role
from fmcsa_status.store import Applied, StatusStore

RECORDED = Path(__file__).with_name("status_answers.json")
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
CSA, VIO, INS, AUTH = SourceKey.CSA, SourceKey.VIOLATIONS, SourceKey.INSPECTIONS, SourceKey.AUTHORITY
_ids = itertools.count(1)

AUTHORITY_SUMMARY = {
    "authority": {"common": "active", "contract": "none", "broker": "inactive"},
    "dockets": ["MC123456"],
    "oos_order": None,
    "insurance": {
        "bipd_required": 750_000,
        "bipd_on_file": 1_000_000,
        "cargo_on_file": 0,
        "bond_on_file": 0,
        "filings": 2,
        "next_cancellation": None,
    },
}
SUMMARIES: dict[SourceKey, dict[str, Any]] = {
    CSA: {"basics_public": 5, "alerts": 1, "highest_percentile": 71.5, "run_month": "2026-10"},
    VIO: {"total": 14, "oos": 2, "latest_inspection_date": "2026-10-20", "rows": []},
    INS: {"us_inspections": 31, "oos_rate": 9.7, "crashes": 1, "status": "ACTIVE", "note": 'é ✓ "q"'},
    AUTH: AUTHORITY_SUMMARY,
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def uid() -> UUID:
    return UUID(int=next(_ids), version=4)


def request(dot: str, source: SourceKey, minute: float, trigger: Trigger = Trigger.MANUAL) -> SyncRequested:
    moment = at(minute)
    return SyncRequested(
        request_id=uid(),
        dot=dot,
        source=source,
        trigger=trigger,
        requested_by="scheduler" if trigger == Trigger.SCHEDULED else "alice@example.com",
        requested_at=moment,
        deadline=moment + timedelta(minutes=30),
        slot=moment if trigger != Trigger.MANUAL else None,
    )


def synced(req: SyncRequested, minute: float, *, unchanged: bool = False) -> SourceSynced:
    finished = at(minute) + timedelta(microseconds=123_456)  # a fraction of a second shows its format
    return SourceSynced(
        request_id=req.request_id,
        dot=req.dot,
        source=req.source,
        counts=Counts() if unchanged else Counts(fetched=9, inserted=4, updated=3, unchanged=2),
        attempts=2,
        started_at=finished - timedelta(seconds=3),
        finished_at=finished,
        retrieved_at=at(minute - 600) if unchanged else finished,
        upstream_as_of=datetime(2026, 10, 31, tzinfo=UTC),
        summary=SUMMARIES[req.source],
        checked_unchanged=unchanged,
    )


def failed(req: SyncRequested, minute: float, *, retryable: bool = True) -> SourceFailed:
    finished = at(minute)
    return SourceFailed(
        request_id=req.request_id,
        dot=req.dot,
        source=req.source,
        kind=ErrorKind.UPSTREAM_ERROR if retryable else ErrorKind.NOT_FOUND,
        retryable=retryable,
        attempts=3,
        message=f"upstream answered 503 for {req.dot}",
        detail="HTTP 503 from upstream",
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
    )


def history() -> list[tuple[Event, datetime]]:
    """The companies, each in its own state (the DOT says which); the same ids on every call."""
    global _ids
    _ids = itertools.count(1)
    out: list[tuple[Event, datetime]] = []

    def add(*events: Event) -> None:
        for event in events:
            moment = getattr(event, "finished_at", None) or getattr(event, "requested_at", None)
            out.append((event, moment or T0))

    def add_at(event: Event, moment: datetime) -> None:
        out.append((event, moment))

    for dot, name in [("1001", "Never Synced LLC"), ("1002", None), ("1003", "Synced Inc"),
                      ("1004", "Failing Co"), ("1005", "Every Source Freight"), ("1006", "Retrying Ltd"),
                      ("1007", "Gone Trucking"), ("1008", "Requested Only")]:  # fmt: skip
        add_at(CompanyRegistered(dot=dot, name=name, registered_by="admin"), at(0))
    # 1002: no name, one scheduled csa success
    r = request("1002", CSA, 10, Trigger.SCHEDULED)
    add(r, synced(r, 11))
    # 1003: csa scheduled then manual success; violations manual success
    r1, r2, r3 = (
        request("1003", CSA, 20, Trigger.SCHEDULED),
        request("1003", CSA, 40),
        request("1003", VIO, 21),
    )
    add(r1, synced(r1, 22), r2, synced(r2, 42), r3, synced(r3, 23))
    # 1004: violations failing twice after a success; csa failed for good once
    ok, bad1, bad2 = (request("1004", VIO, m, Trigger.SCHEDULED) for m in (30, 50, 70))
    add(ok, synced(ok, 31), bad1, failed(bad1, 51), bad2, failed(bad2, 71))
    c = request("1004", CSA, 60)
    add(c, failed(c, 61, retryable=False))
    # 1005: every source, a carrier record (authority summary and a change fact), a checked-unchanged one
    for n, source in enumerate(SourceKey):
        req = request("1005", source, 80 + n, Trigger.SCHEDULED if n % 2 else Trigger.CATCH_UP)
        add(req)
        if source == CSA:
            change = CarrierDataChanged(
                request_id=req.request_id,
                dot="1005",
                source=CSA,
                kind=ChangeKind.BASIC_PERCENTILE_CHANGED,
                subject="unsafe_driving",
                before=60,
                after=71.5,
                upstream_as_of=datetime(2026, 10, 1, tzinfo=UTC),
                observed_at=at(81 + n),
            )
            add_at(change, at(81 + n))
        add(synced(req, 81 + n, unchanged=source == INS))
    # 1006: an inspections request waiting for its retry after a failed attempt
    r = request("1006", INS, 100)
    add(r)
    add_at(
        SyncAttemptFailed(
            request_id=r.request_id,
            dot="1006",
            source=INS,
            attempt=1,
            max_attempts=5,
            kind=ErrorKind.UPSTREAM_ERROR,
            message="upstream_error on attempt 1",
            retry_at=at(101) + timedelta(seconds=30),
            first_attempt_at=at(100) + timedelta(seconds=1),
        ),
        at(101),
    )
    # 1007: synced, then removed
    r = request("1007", AUTH, 110)
    add(r, synced(r, 111))
    add_at(CompanyRemoved(dot="1007"), at(112))
    # 1008: requested, no outcome yet; 1009: never registered, requested and synced
    add(request("1008", VIO, 120))
    r = request("1009", CSA, 121)
    add(r, synced(r, 122))
    return out


def delivered(items: Sequence[tuple[Event, datetime]]) -> list[Delivered]:
    out = []
    for seq, (event, moment) in enumerate(items, start=1):
        envelope = envelope_for(event, producer="test", occurred_at=moment, event_id_override=f"e-{seq}")
        headers, data = envelope.to_headers(), encode(event)
        out.append(Delivered(seq, subject_for(event), headers, data, decode(headers, data)))
    return out


PATHS = [
    *(f"/api/companies/{dot}/status" for dot in range(1001, 1010)),
    "/api/companies/0001005/status",  # leading zeros: the same company
    "/api/companies/4242/status",  # unknown: 404
    "/api/companies/12x/status",  # not a DOT number: 422
]


def answer(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "headers": [[name, value] for name, value in response.headers.multi_items() if name != "date"],
        "body": response.content.decode(),
    }


async def test_status_answers_are_unchanged(
    fresh_nats_url: str, database_url: str, jwt_secret: str, bearer: Any, tmp_path: Path
) -> None:
    store = await StatusStore.connect(database_url)
    try:
        assert isinstance(await store.apply(delivered(history()), believed=0, dead_letter=None), Applied)
    finally:
        await store.close()
    viewer, admin = bearer(Role.VIEWER), bearer(Role.ADMIN)
    got: dict[str, Any] = {}
    settings = Settings(
        nats_url=fresh_nats_url,
        data_dir=tmp_path,
        status_database_url=database_url,
        jwt_secret=jwt_secret,
        read_your_writes_s=0,
    )
    async with AsyncTestClient(create_app(settings), timeout=60) as client:
        # schedules of every kind: authority on a cron, inspections disabled, the others by default
        for source, body in [("authority", {"cron": "0 6 * * *"}),
                             ("inspections", {"interval_minutes": 720, "enabled": False})]:  # fmt: skip
            put = await client.put(f"/api/schedules/{source}", json=body, headers=admin)
            assert put.status_code == 200, put.text
        for path in PATHS:
            got[path] = answer(await client.get(path, headers=viewer))
        got["no token"] = answer(await client.get(PATHS[0]))
        got["bad token"] = answer(await client.get(PATHS[0], headers={"Authorization": "Bearer x.y.z"}))
    if out := os.environ.get("STATUS_ANSWERS_WRITE"):
        Path(out).write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")  # noqa: ASYNC240
        return
    recorded = json.loads(RECORDED.read_text())
    assert list(got) == list(recorded)
    for key, expected in recorded.items():
        assert got[key] == expected, key
