"""The notifier's store on SQLite and PostgreSQL, read back through the gateway's read-only view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from fmcsa_alerts.deliveries import DeliveriesView, DeliveryStatus
from fmcsa_alerts.retry import Delivered, GaveUp, RetryLater
from fmcsa_events.models import (
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    ChangeKind,
    WebhookDestination,
)
from fmcsa_notifier.domain import plan
from fmcsa_notifier.store import NotifierStore

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
RULE = AlertRuleChanged(
    name="ratings",
    kinds=(ChangeKind.SAFETY_RATING_CHANGED,),
    destinations=(WebhookDestination(url="http://127.0.0.1:9/a", sealed_secret="sealed"),),
)
CHANGE = CarrierDataChanged(
    request_id=UUID(int=3),
    dot="99700003",
    source="inspections",
    kind=ChangeKind.SAFETY_RATING_CHANGED,
    subject="safety_rating",
    before={"rating": "S"},
    after={"rating": "C"},
    observed_at=NOW,
)


async def test_rules_deliveries_and_attempts_round_trip_idempotently(database_url: str) -> None:
    store = await NotifierStore.connect(database_url)
    view = DeliveriesView(database_url)
    try:
        await store.record_rule(5, RULE)
        await store.record_rule(5, RULE)  # a redelivered rule event changes nothing
        await store.record_rule(9, AlertRuleRemoved(name="ratings"))
        history = await store.rule_history()
        assert [seq for seq, _ in history] == [5, 9]
        planned = plan(CHANGE, event_id="change:1", seq=7, history=history, api_url="http://gw")
        for _ in range(2):  # planning twice stores one delivery
            await store.plan(planned, change=CHANGE, event_id="change:1", seq=7, now=NOW)
        [ident] = await store.ids_for_change("change:1")
        [work] = await store.work([ident])
        assert work.status is DeliveryStatus.PENDING
        retry = RetryLater(60.0, "HTTP 500")
        await store.record_attempt(
            work, settled=retry, status_code=500, error=None, duration_ms=3, at=NOW,
            next_attempt_at=NOW + timedelta(seconds=60),
        )  # fmt: skip
        [work] = await store.work([ident])
        await store.record_attempt(
            work, settled=GaveUp("HTTP 500 (gave up)", retryable=True), status_code=500, error=None,
            duration_ms=3, at=NOW, next_attempt_at=None,
        )  # fmt: skip
        [destination] = await view.destinations()
        assert destination.failing
        assert await store.reset_for_resend(ident, now=NOW)
        [work] = await store.work([ident])
        assert work.round_attempts == 0
        recovered = await store.record_attempt(
            work,
            settled=Delivered(200),
            status_code=200,
            error=None,
            duration_ms=2,
            at=NOW,
            next_attempt_at=None,
        )
        assert recovered
        found = await view.get(ident)
        assert found is not None
        assert found.status is DeliveryStatus.DELIVERED
        assert [a.status_code for a in found.history] == [500, 500, 200]
        assert await view.change_ids_fired("ratings", since=NOW, until=None) == {"change:1"}
        assert [d.id for d in await view.recent(dot="99700003")] == [ident]
        assert await view.recent(rule="other") == []
        assert not (await view.destinations())[0].failing
    finally:
        await view.close()
        await store.close()
