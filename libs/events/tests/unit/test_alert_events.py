import pytest
from pydantic import ValidationError

from fmcsa_events import subjects
from fmcsa_events.decoder import Decoded, decode, encode
from fmcsa_events.envelope import envelope_for
from fmcsa_events.models import (
    AlertRuleChanged,
    AlertRuleRemoved,
    ChangeKind,
    WebhookDestination,
    WebhookResendRequested,
)
from fmcsa_events.topology import notifier_consumer

RULE = AlertRuleChanged(
    name="csa-alerts",
    kinds=(ChangeKind.BASIC_ALERT_STARTED,),
    destinations=(WebhookDestination(url="https://hooks.example.com/x", sealed_secret="gAAAA-sealed"),),
)


def test_alert_events_have_subjects_by_rule_name() -> None:
    assert subjects.subject_for(RULE) == "fmcsa.evt.alert_rule_changed.csa-alerts"
    assert (
        subjects.subject_for(AlertRuleRemoved(name="csa-alerts")) == "fmcsa.evt.alert_rule_removed.csa-alerts"
    )
    resend = WebhookResendRequested(delivery_id="a" * 32)
    assert subjects.subject_for(resend) == "fmcsa.evt.webhook_resend_requested"
    with pytest.raises(ValueError, match="rule name"):
        subjects.alert_rule_changed("a.b")


def test_alert_events_round_trip_through_the_decoder() -> None:
    from datetime import UTC, datetime

    envelope = envelope_for(RULE, producer="gateway", occurred_at=datetime.now(UTC))
    decoded = decode(envelope.to_headers(), encode(RULE))
    assert isinstance(decoded, Decoded)
    assert decoded.event == RULE


def test_resend_needs_a_delivery_id() -> None:
    with pytest.raises(ValidationError):
        WebhookResendRequested(delivery_id="../../etc")


def test_the_notifier_consumer_reads_changes_rules_and_resends_from_its_creation() -> None:
    config = notifier_consumer(ack_wait_s=30, max_deliver=100, max_ack_pending=128)
    assert config.filter_subjects is not None
    assert "fmcsa.evt.carrier_data_changed.>" in config.filter_subjects
    assert "fmcsa.evt.webhook_resend_requested" in config.filter_subjects
    assert config.deliver_policy is not None
    assert config.deliver_policy.value == "new"
