import json
from datetime import UTC, datetime
from uuid import UUID

import pytest

from fmcsa_alerts.payload import delivery_id, destination_id, webhook_body
from fmcsa_alerts.sealing import SealedSecretUnreadable, SealingUnavailable, SecretBox, generate_key
from fmcsa_events.models import CarrierDataChanged, ChangeKind


def test_a_sealed_secret_opens_with_its_key_only() -> None:
    box = SecretBox(generate_key())
    sealed = box.seal("whsec_plain")
    assert "whsec_plain" not in sealed
    assert box.open(sealed) == "whsec_plain"
    with pytest.raises(SealedSecretUnreadable):
        SecretBox(generate_key()).open(sealed)


def test_rotation_seals_with_the_first_key_and_opens_with_any() -> None:
    old, new = generate_key(), generate_key()
    sealed_before = SecretBox(old).seal("s1")
    both = SecretBox(f"{new},{old}")
    assert both.open(sealed_before) == "s1"
    assert SecretBox(new).open(both.seal("s2")) == "s2"


@pytest.mark.parametrize("key", ["", " , ", "not-a-key"])
def test_no_key_or_a_bad_key_is_refused(key: str) -> None:
    with pytest.raises(SealingUnavailable):
        SecretBox(key)


def test_the_body_is_deterministic_and_carries_change_rule_and_links() -> None:
    change = CarrierDataChanged(
        request_id=UUID(int=7),
        dot="99700001",
        source="csa",
        kind=ChangeKind.BASIC_ALERT_STARTED,
        subject="unsafe_driving",
        before={"alert": False},
        after={"alert": True},
        observed_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    ident = delivery_id("change:x", "rule-a", "http://127.0.0.1:9/h")
    assert len(ident) == 32
    assert ident != delivery_id("change:x", "rule-b", "http://127.0.0.1:9/h")
    body = webhook_body(
        delivery=ident, change_event_id="change:x", change=change, rule="rule-a", api_url="http://gw:8000/"
    )
    assert body == webhook_body(
        delivery=ident, change_event_id="change:x", change=change, rule="rule-a", api_url="http://gw:8000/"
    )
    document = json.loads(body)
    assert document["rule"] == "rule-a"
    assert document["change"]["after"] == {"alert": True}
    assert document["links"]["company"] == "http://gw:8000/api/companies/99700001/status"
    assert len(destination_id("http://127.0.0.1:9/h")) == 16
