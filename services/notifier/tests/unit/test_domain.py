from datetime import UTC, datetime, timedelta
from uuid import UUID

from fmcsa_alerts.payload import delivery_id
from fmcsa_events.models import (
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    ChangeKind,
    WebhookDestination,
)
from fmcsa_notifier.domain import Ack, NakFor, due, fate, plan

NOW = datetime(2026, 12, 1, tzinfo=UTC)
A = WebhookDestination(url="http://127.0.0.1:9001/a", sealed_secret="sa")
B = WebhookDestination(url="http://127.0.0.1:9001/b", sealed_secret="sb")

CHANGE = CarrierDataChanged(
    request_id=UUID(int=1),
    dot="99700003",
    source="inspections",
    kind=ChangeKind.SAFETY_RATING_CHANGED,
    subject="safety_rating",
    before={"rating": "S"},
    after={"rating": "C"},
    observed_at=NOW,
)


def rule(
    name: str, *dests: WebhookDestination, kinds: tuple[ChangeKind, ...] = (ChangeKind.SAFETY_RATING_CHANGED,)
) -> AlertRuleChanged:
    return AlertRuleChanged(name=name, kinds=kinds, destinations=dests)


def test_a_change_makes_one_delivery_per_firing_rule_and_destination() -> None:
    history = [
        (1, rule("ratings", A, B)),
        (2, rule("status", A, kinds=(ChangeKind.OPERATING_STATUS_CHANGED,))),
    ]
    planned = plan(CHANGE, event_id="change:x", seq=10, history=history, api_url="http://gw")
    assert [(p.rule, p.url) for p in planned] == [("ratings", A.url), ("ratings", B.url)]
    assert planned[0].id == delivery_id("change:x", "ratings", A.url)
    assert planned[0].sealed_secret == "sa"


def test_only_rules_before_the_change_count() -> None:
    history = [(5, rule("ratings", A)), (12, AlertRuleRemoved(name="ratings"))]
    assert plan(CHANGE, event_id="e", seq=4, history=history, api_url="x") == []
    assert len(plan(CHANGE, event_id="e", seq=6, history=history, api_url="x")) == 1
    assert plan(CHANGE, event_id="e", seq=13, history=history, api_url="x") == []


def test_planning_again_gives_the_same_ids_and_bodies() -> None:
    history = [(1, rule("ratings", A))]
    assert plan(CHANGE, event_id="e", seq=2, history=history, api_url="x") == plan(
        CHANGE, event_id="e", seq=2, history=history, api_url="x"
    )


def test_a_message_is_acked_when_nothing_is_pending_else_comes_back_when_the_first_is_due() -> None:
    assert fate([], now=NOW) == Ack()
    later = [NOW + timedelta(seconds=300), NOW + timedelta(seconds=60)]
    assert fate(later, now=NOW) == NakFor(60.0)
    assert fate([NOW - timedelta(seconds=5)], now=NOW) == NakFor(0.0)


def test_due_allows_for_an_early_redelivery() -> None:
    assert due(None, now=NOW)
    assert due(NOW + timedelta(milliseconds=30), now=NOW)
    assert not due(NOW + timedelta(seconds=1), now=NOW)
