"""The company view's authority and insurance panel, through the gateway and the real projector: an
authority `SourceSynced` published on the bus is folded, and `/ui/companies/{dot}` shows its summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind, Counts, SourceSynced, SyncRequested, Trigger
from fmcsa_runtime.tokens import Role

DOT, NEVER = "2847193", "99700010"
AS_OF = datetime(2026, 11, 27, tzinfo=UTC)


def _request(at: datetime) -> SyncRequested:
    return SyncRequested(
        request_id=uuid4(), dot=DOT, source=SourceKey.AUTHORITY, trigger=Trigger.SCHEDULED,
        requested_by="scheduler", requested_at=at, deadline=at + timedelta(minutes=30), slot=at,
    )  # fmt: skip


def _synced(request: SyncRequested, summary: dict[str, Any]) -> SourceSynced:
    return SourceSynced(
        request_id=request.request_id, dot=DOT, source=SourceKey.AUTHORITY,
        counts=Counts(fetched=4, inserted=0, updated=1, unchanged=3), attempts=1,
        started_at=request.requested_at, finished_at=request.requested_at + timedelta(seconds=1),
        retrieved_at=request.requested_at + timedelta(seconds=1), upstream_as_of=AS_OF, summary=summary,
    )  # fmt: skip


def _summary(
    *, bipd_on_file: int, next_cancellation: str | None, oos: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "authority": {"common": "active", "contract": "none", "broker": "pending_revocation"},
        "dockets": ["MC123456", "FF7890"],
        "oos_order": oos,
        "insurance": {
            "bipd_required": 750_000, "bipd_on_file": bipd_on_file, "cargo_on_file": 100_000,
            "bond_on_file": 0, "filings": 3, "next_cancellation": next_cancellation,
        },
    }  # fmt: skip


async def test_the_company_view_shows_the_newest_authority_summary_as_a_panel(
    gateway: Any, bearer: Any, wait_until: Any
) -> None:
    admin, viewer = bearer(Role.ADMIN), bearer(Role.VIEWER)
    for dot in (DOT, NEVER):
        answer = await gateway.client.post("/api/companies", json={"dot_number": dot}, headers=admin)
        assert answer.status_code == 201, answer.text
    now = datetime.now(UTC)
    older, newer = _request(now - timedelta(hours=30)), _request(now - timedelta(hours=6))
    cancellation = (now + timedelta(days=30)).date().isoformat()
    pending = CarrierDataChanged(
        request_id=newer.request_id, dot=DOT, source=SourceKey.AUTHORITY,
        kind=ChangeKind.INSURANCE_CANCELLATION_PENDING, subject="bipd_p_1",
        before={"type": "BIPD", "policy_number": "P-1", "cancellation": None},
        after={"type": "BIPD", "policy_number": "P-1", "cancellation": cancellation},
        upstream_as_of=AS_OF, observed_at=newer.requested_at + timedelta(seconds=1),
    )  # fmt: skip
    await gateway.publish_folded(
        [
            older,
            _synced(older, _summary(bipd_on_file=1_000_000, next_cancellation=None, oos=None)),
            newer,
            pending,
            _synced(
                newer,
                _summary(
                    bipd_on_file=500_000,
                    next_cancellation=cancellation,
                    oos={"date": "2026-11-20", "reason": "Failure to <b>pay</b> civil penalty"},
                ),
            ),
        ],
        headers=admin,
        wait_until=wait_until,
    )

    page = await gateway.client.get(f"/ui/companies/{DOT}", headers=viewer)
    assert page.status_code == 200, page.text
    html = page.text
    assert f'id="authority-{DOT}"' in html
    for kind, status in (("common", "active"), ("contract", "none"), ("broker", "pending_revocation")):
        assert f'data-authority="{kind}" data-status="{status}"' in html
    assert 'data-dockets="MC123456,FF7890"' in html
    assert 'data-oos="yes"' in html
    assert "since 2026-11-20: Failure to &lt;b&gt;pay&lt;/b&gt; civil penalty" in html  # text, escaped
    assert "$500,000 on file of $750,000 required (below required)" in html  # the newer summary only
    assert "$1,000,000" not in html
    assert "$100,000 / $0" in html
    assert 'data-filings="3"' in html
    assert f'data-next-cancellation="{cancellation}"' in html
    assert f"{cancellation} (in 30 d)" in html
    assert "data as of 2026-11-27" in html
    # the authority row in the sources table, and the change in the timeline
    assert "<td>authority</td>" in html
    assert 'data-kind="insurance_cancellation_pending"' in html

    never = await gateway.client.get(f"/ui/companies/{NEVER}", headers=viewer)
    assert never.status_code == 200
    assert "No authority data yet." in never.text
    assert f'id="authority-{NEVER}"' not in never.text

    status = (await gateway.client.get(f"/api/companies/{DOT}/status", headers=viewer)).json()
    assert status["sources"]["authority"]["summary"]["insurance"]["bipd_on_file"] == 500_000
    assert status["sources"]["authority"]["next_due"]["within_minutes"] == 1440  # daily by default
    assert status["syncStatus"]["authorityLastSync"] is not None
    history = (
        await gateway.client.get(f"/api/companies/{DOT}/history?source=authority", headers=viewer)
    ).json()
    assert [(s["subject"], [p["values"] for p in s["points"]]) for s in history["series"]] == [
        ("insurance", [{"bipd_on_file": 500_000.0, "bipd_required": 750_000.0}])  # one as-of date: the newest
    ]
    changes = (await gateway.client.get("/api/changes?source=authority", headers=viewer)).json()["items"]
    # the newer summary may also move the risk light (a derived `risk_changed`, when the two successes fold
    # in separate batches): the source's own fact is what this test is about
    observed = [(c["kind"], c["subject"]) for c in changes if c["kind"] != "risk_changed"]
    assert observed == [("insurance_cancellation_pending", "bipd_p_1")]
    other = await gateway.client.get("/api/changes?source=csa&kind=insurance_cancelled", headers=viewer)
    assert (other.status_code, other.json()["items"]) == (200, [])  # a kind of another source matches nothing
