import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from fmcsa_alerts.payload import webhook_body
from fmcsa_alerts.rules import PastChange, backtest, change_value, in_effect, matches
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    CHANGE_KINDS_BY_SOURCE,
    AlertConditions,
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    ChangeKind,
    WebhookDestination,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEST = WebhookDestination(url="https://hooks.example.com/fmcsa", sealed_secret="sealed")


def rule(**overrides: Any) -> AlertRuleChanged:
    values: dict[str, Any] = {
        "name": "csa-alerts",
        "kinds": (ChangeKind.BASIC_PERCENTILE_CHANGED, ChangeKind.BASIC_ALERT_STARTED),
        "destinations": (DEST,),
    }
    return AlertRuleChanged(**{**values, **overrides})


def basic(percentile: str | None, *, alert: bool = False) -> dict[str, Any]:
    return {
        "percentile": percentile,
        "status": "public",
        "measure": "1.87",
        "threshold": "50",
        "alert": alert,
    }


def change(**overrides: Any) -> CarrierDataChanged:
    values: dict[str, Any] = {
        "request_id": uuid4(),
        "dot": "99700001",
        "source": "csa",
        "kind": ChangeKind.BASIC_PERCENTILE_CHANGED,
        "subject": "unsafe_driving",
        "before": basic("45"),
        "after": basic("58", alert=True),
        "observed_at": NOW,
    }
    return CarrierDataChanged(**{**values, **overrides})


def test_a_rule_fires_on_its_kinds_only() -> None:
    assert matches(rule(), change())
    assert not matches(rule(kinds=(ChangeKind.BASIC_ALERT_CLEARED,)), change())


def test_a_disabled_rule_fires_on_nothing() -> None:
    assert not matches(rule(enabled=False), change())


def test_a_company_list_limits_the_rule_and_none_means_all() -> None:
    assert matches(rule(dots=None), change())
    assert matches(rule(dots=("99700001", "5")), change())
    assert not matches(rule(dots=("5",)), change())


def test_percentile_at_least_compares_the_value_after() -> None:
    assert matches(rule(conditions=AlertConditions(percentile_at_least=58)), change())
    assert not matches(rule(conditions=AlertConditions(percentile_at_least=58.5)), change())


def test_delta_at_least_counts_either_direction() -> None:
    up = change()
    down = change(before=basic("58"), after=basic("45"))
    for moved in (up, down):
        assert matches(rule(conditions=AlertConditions(delta_at_least=13)), moved)
        assert not matches(rule(conditions=AlertConditions(delta_at_least=13.5)), moved)


def test_a_condition_without_a_value_is_not_met() -> None:
    added = change(
        source="violations",
        kind=ChangeKind.VIOLATIONS_ADDED,
        subject="violations_added",
        before={"count": 0},
        after={"count": 1, "oos_count": 1},
    )
    kinds = (ChangeKind.VIOLATIONS_ADDED,)
    assert matches(rule(kinds=kinds), added)
    assert not matches(rule(kinds=kinds, conditions=AlertConditions(percentile_at_least=0)), added)
    became_public = change(kind=ChangeKind.BASIC_BECAME_PUBLIC, before=None, after=basic("38"))
    public = rule(kinds=(ChangeKind.BASIC_BECAME_PUBLIC,))
    assert matches(public, became_public)
    assert not matches(
        public.model_copy(update={"conditions": AlertConditions(delta_at_least=1)}), became_public
    )


def test_subjects_limit_the_rule() -> None:
    assert matches(rule(conditions=AlertConditions(subjects=("unsafe_driving",))), change())
    assert not matches(rule(conditions=AlertConditions(subjects=("hos_compliance",))), change())


def test_oos_rate_percent_is_the_value_of_an_oos_change() -> None:
    oos = change(
        source="inspections",
        kind=ChangeKind.OOS_RATE_CHANGED,
        subject="us_driver",
        before={"percent": "9.43", "inspections": 212},
        after={"percent": "15.5", "inspections": 220},
    )
    assert change_value(oos.after) == 15.5
    assert matches(
        rule(kinds=(ChangeKind.OOS_RATE_CHANGED,), conditions=AlertConditions(delta_at_least=5)), oos
    )


def test_values_are_read_from_text_numbers_and_percent_signs() -> None:
    assert change_value({"percentile": "58%"}) == 58.0
    assert change_value({"percentile": 12}) == 12.0
    assert change_value({"percentile": None}) is None
    assert change_value({"percentile": "Not Public"}) is None
    assert change_value("58") is None


def test_values_are_compared_exactly_not_as_floats() -> None:
    just_below = "57.99999999999999999999999999999999999999"  # a float reads 58.0
    assert change_value({"percentile": just_below}) == Decimal(just_below)
    assert not matches(
        rule(conditions=AlertConditions(percentile_at_least=58)), change(after=basic(just_below))
    )
    assert matches(
        rule(conditions=AlertConditions(percentile_at_least=57.5)), change(after=basic(just_below))
    )
    moved_short = change(
        before=basic("45.00000000000000000001"), after=basic("58")
    )  # 12.99999999999999999999
    assert not matches(rule(conditions=AlertConditions(delta_at_least=13)), moved_short)
    assert matches(rule(conditions=AlertConditions(delta_at_least=12.5)), moved_short)


def test_an_old_change_holding_json_numbers_is_read_as_the_number_written() -> None:
    assert change_value({"percent": 15.1}) == Decimal("15.1")  # not 15.0999999999999996447...
    assert change_value({"percent": float("nan")}) is None
    old = change(before={"percentile": 45.1}, after={"percentile": 58.1})
    assert matches(rule(conditions=AlertConditions(delta_at_least=13)), old)  # 13.0 exactly, not 12.99...


def test_rule_names_and_conditions_are_validated() -> None:
    for bad in ("Upper", "has space", "a.b", "", "x" * 64, "*"):
        with pytest.raises(ValidationError):
            rule(name=bad)
    with pytest.raises(ValidationError):
        rule(destinations=())
    with pytest.raises(ValidationError):
        AlertConditions(percentile_at_least=101)
    with pytest.raises(ValidationError):
        AlertConditions(subjects=("Bad.Subject",))
    with pytest.raises(ValidationError):
        WebhookDestination(url="ftp://example.com/x", sealed_secret="s")


def test_the_rule_in_effect_is_the_last_event_before_the_change() -> None:
    first, second = rule(), rule(enabled=False)
    history = [(5, first), (9, second), (12, AlertRuleRemoved(name="csa-alerts"))]
    assert in_effect(history, before_seq=5) == {}
    assert in_effect(history, before_seq=6) == {"csa-alerts": first}
    assert in_effect(history, before_seq=10) == {"csa-alerts": second}
    assert in_effect(history, before_seq=13) == {}


def test_backtest_keeps_the_period_drops_repeats_and_sends_nothing() -> None:
    early = PastChange(1, "change:a", change(observed_at=NOW - timedelta(days=2)))
    inside = PastChange(2, "change:b", change())
    again = PastChange(3, "change:b", inside.change)  # a republish beyond the duplicate window
    other = PastChange(4, "change:c", change(kind=ChangeKind.BASIC_ALERT_CLEARED))
    late = PastChange(5, "change:d", change(observed_at=NOW + timedelta(days=2)))
    fired = backtest(
        rule(),
        [late, other, again, inside, early],
        since=NOW - timedelta(days=1),
        until=NOW + timedelta(days=1),
    )
    assert [f.event_id for f in fired] == ["change:b"]
    assert len(backtest(rule(), [early, inside, late], since=NOW - timedelta(days=3), until=None)) == 3


FILING = {
    "type": "BIPD",
    "form": "91X",
    "insurer": "Acme Casualty",
    "policy_number": "P-1",
    "coverage": 1_000_000,
    "effective": "2025-01-01",
    "cancellation": None,
}


def test_every_authority_kind_is_a_rule_kind_and_a_pending_cancellation_fires_its_rule() -> None:
    authority = CHANGE_KINDS_BY_SOURCE[SourceKey.AUTHORITY]
    assert AlertRuleChanged(name="all-authority", kinds=authority, destinations=(DEST,)).kinds == authority
    pending = rule(name="insurance", kinds=(ChangeKind.INSURANCE_CANCELLATION_PENDING,), dots=("2847193",))
    cancelling = change(
        dot="2847193",
        source="authority",
        kind=ChangeKind.INSURANCE_CANCELLATION_PENDING,
        subject="bipd_p_1",
        before=FILING,
        after={**FILING, "cancellation": "2027-01-15"},
    )
    assert matches(pending, cancelling)
    assert not matches(pending, cancelling.model_copy(update={"kind": ChangeKind.INSURANCE_CANCELLED}))
    assert not matches(pending, cancelling.model_copy(update={"dot": "99700010"}))
    assert matches(
        pending.model_copy(update={"conditions": AlertConditions(subjects=("bipd_p_1",))}), cancelling
    )
    # a filing carries no percentile: a percentile condition is never met by it
    limited = pending.model_copy(update={"conditions": AlertConditions(percentile_at_least=1)})
    assert not matches(limited, cancelling)
    body = json.loads(
        webhook_body(delivery="d" * 32, change_event_id="change:x", change=cancelling, rule="insurance",
                     api_url="http://gw:8000")
    )  # fmt: skip
    assert body["rule"] == "insurance"
    assert (body["change"]["kind"], body["change"]["source"]) == (
        "insurance_cancellation_pending",
        "authority",
    )
    assert body["change"]["before"] == FILING
    assert body["change"]["after"]["cancellation"] == "2027-01-15"
    assert body["links"]["company"] == "http://gw:8000/api/companies/2847193/status"


def test_a_turned_red_rule_fires_on_a_risk_change_to_red_of_any_source() -> None:
    """`risk_changed` (the status service's, valid with every source) names the light after as its
    subject, so "turned red" is the kind with `subjects: [red]`."""
    turned_red = rule(
        name="turned-red", kinds=(ChangeKind.RISK_CHANGED,), conditions=AlertConditions(subjects=("red",))
    )
    yellow = {"light": "yellow", "reasons": [{"code": "basic_alert", "light": "yellow", "text": "x"}]}
    red = {"light": "red", "reasons": [{"code": "rating_unsatisfactory", "light": "red", "text": "y"}]}
    for source in SourceKey:
        to_red = change(source=source, kind=ChangeKind.RISK_CHANGED, subject="red", before=yellow, after=red)
        assert matches(turned_red, to_red)
        assert matches(rule(name="any-risk", kinds=(ChangeKind.RISK_CHANGED,)), to_red)
    back = change(kind=ChangeKind.RISK_CHANGED, subject="yellow", before=red, after=yellow)
    assert not matches(turned_red, back)
    assert not matches(rule(), change(kind=ChangeKind.RISK_CHANGED, subject="red", before=yellow, after=red))
    with pytest.raises(ValidationError):  # a source's own kinds stay its own
        change(source="violations", kind=ChangeKind.BASIC_ALERT_STARTED)
