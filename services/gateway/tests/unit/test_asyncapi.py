"""The AsyncAPI document against what runs: every event type and nothing else, the subjects
`subject_for` publishes on, the headers `Envelope.to_headers` writes, and payloads that validate.

The official AsyncAPI CLI validates the same document in tests/integration/test_asyncapi_cli.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jsonschema_rs

from fmcsa_events.envelope import CORRELATION_ID, REQUIRED_HEADERS, Envelope, envelope_for
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import (
    EVENT_TYPES,
    AlertRuleChanged,
    AlertRuleRemoved,
    CarrierDataChanged,
    ChangeKind,
    CompanyRegistered,
    CompanyRemoved,
    Counts,
    ErrorKind,
    Event,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncAttemptFailed,
    SyncRequested,
    Trigger,
    ViolationsListed,
    WebhookDestination,
    WebhookResendRequested,
)
from fmcsa_events.subjects import subject_for
from fmcsa_gateway.asyncapi import asyncapi_document

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
RID = UUID("6f1c2a7e-0000-4000-8000-000000000001")
DOCUMENT = asyncapi_document(
    nats_url="nats://gateway:s3cret@nats-1:4222, nats://nats-2:4223", version="1.2.3"
)


def examples() -> list[Event]:
    """One event of each type, as the services publish them."""
    ids: dict[str, Any] = {"request_id": RID, "dot": "2847193", "source": SourceKey.VIOLATIONS}
    return [
        CompanyRegistered(dot="2847193", name="Acme Freight"),
        CompanyRemoved(dot="2847193"),
        ScheduleChanged(source=SourceKey.CSA, interval_minutes=60),
        SyncRequested(
            **ids,
            trigger=Trigger.SCHEDULED,
            requested_at=NOW,
            deadline=NOW + timedelta(minutes=30),
            slot=NOW,
        ),
        SourceSynced(**ids, counts=Counts(fetched=3), attempts=1, started_at=NOW, finished_at=NOW),
        SourceFailed(
            **ids, kind=ErrorKind.TIMEOUT, retryable=True, attempts=3, message="late", finished_at=NOW
        ),
        SyncAttemptFailed(
            **ids,
            attempt=1,
            max_attempts=3,
            kind=ErrorKind.RATE_LIMITED,
            message="429",
            retry_at=NOW,
            first_attempt_at=NOW,
        ),
        CarrierDataChanged(
            **ids, kind=ChangeKind.VIOLATIONS_ADDED, subject="violations_added", after=2, observed_at=NOW
        ),
        ViolationsListed(**ids, offset=500, total=501, rows=({"inspection": "905120418", "oos": True},)),
        AlertRuleChanged(
            name="csa-alerts",
            kinds=(ChangeKind.BASIC_ALERT_STARTED,),
            destinations=(WebhookDestination(url="https://hooks.example.com/x", sealed_secret="sealed"),),
        ),
        AlertRuleRemoved(name="csa-alerts"),
        WebhookResendRequested(delivery_id="0" * 32),
    ]


def _validator(ref: str) -> Any:
    """A JSON Schema validator of one of the document's schemas, its `$ref`s resolved in the document."""
    return jsonschema_rs.Draft202012Validator({"$ref": ref, "components": DOCUMENT["components"]})


def test_every_event_type_has_a_channel_a_message_and_an_operation_and_nothing_else() -> None:
    names = {cls.__name__ for cls in EVENT_TYPES}
    assert set(DOCUMENT["channels"]) == {cls.TYPE for cls in EVENT_TYPES}
    assert set(DOCUMENT["components"]["messages"]) == names
    assert set(DOCUMENT["operations"]) == {f"publish_{cls.TYPE}" for cls in EVENT_TYPES}
    for cls in EVENT_TYPES:
        channel = DOCUMENT["channels"][cls.TYPE]
        assert channel["messages"] == {cls.__name__: {"$ref": f"#/components/messages/{cls.__name__}"}}
        assert DOCUMENT["components"]["messages"][cls.__name__]["name"] == cls.TYPE
        operation = DOCUMENT["operations"][f"publish_{cls.TYPE}"]
        assert operation["action"] == "send"
        assert operation["channel"] == {"$ref": f"#/channels/{cls.TYPE}"}
    assert {type(e) for e in examples()} == set(EVENT_TYPES), "one example per event type"


def test_each_address_is_the_subject_the_event_is_published_on_with_parameters_for_its_tokens() -> None:
    for event in examples():
        channel = DOCUMENT["channels"][event.TYPE]
        address: str = channel["address"]
        placeholders = re.findall(r"\{([a-z_]+)\}", address)
        assert set(channel.get("parameters", {})) == set(placeholders)
        payload = event.model_dump(mode="json")
        filled = address.format_map({name: payload[name] for name in placeholders})
        assert filled == subject_for(event)
        for name, parameter in channel.get("parameters", {}).items():
            assert parameter["location"] == f"$message.payload#/{name}"
            if name == "source":
                assert parameter["enum"] == [s.value for s in SourceKey]
    dot = DOCUMENT["channels"]["company_registered"]["parameters"]["dot"]
    assert "^[1-9][0-9]{0,7}$" in dot["description"]
    rule = DOCUMENT["channels"]["alert_rule_changed"]["parameters"]["name"]
    assert "^[a-z0-9][a-z0-9_-]{0,62}$" in rule["description"]


def test_headers_are_the_envelope_and_the_correlation_id_points_at_its_header() -> None:
    envelope_schema = DOCUMENT["components"]["schemas"]["EnvelopeHeaders"]
    full = Envelope(
        event_id="request:1",
        type="sync_requested",
        version=1,
        occurred_at=NOW,
        correlation_id="r",
        causation_id="c",
        producer="gateway",
    )
    assert set(envelope_schema["properties"]) == set(full.to_headers())
    assert envelope_schema["required"] == list(REQUIRED_HEADERS)
    for event in examples():
        message = DOCUMENT["components"]["messages"][type(event).__name__]
        assert message["correlationId"]["location"] == f"$message.header#/{CORRELATION_ID}"
        headers = envelope_for(event, producer="gateway", occurred_at=NOW).to_headers()
        assert jsonschema_rs.Draft202012Validator(
            {**message["headers"], "components": DOCUMENT["components"]}
        ).is_valid(headers), headers
        other_type = {
            **headers,
            "Fmcsa-Type": "company_registered" if event.TYPE != "company_registered" else "x",
        }
        assert not jsonschema_rs.Draft202012Validator(
            {**message["headers"], "components": DOCUMENT["components"]}
        ).is_valid(other_type)
    assert "Correlation-Id" not in str(DOCUMENT).replace(CORRELATION_ID, "")


def test_payloads_as_published_validate_against_their_message_schema() -> None:
    for event in examples():
        message = DOCUMENT["components"]["messages"][type(event).__name__]
        validator = _validator(message["payload"]["$ref"])
        payload = event.model_dump(mode="json")
        errors = [e.message for e in validator.iter_errors(payload)]
        assert not errors, (event.TYPE, errors)
    synced = _validator("#/components/schemas/SourceSynced")
    assert not synced.is_valid({"request_id": str(RID), "dot": "0", "source": "csa"})


def test_servers_are_every_configured_url_without_credentials() -> None:
    assert {name: server["host"] for name, server in DOCUMENT["servers"].items()} == {
        "nats": "nats-1:4222",
        "nats-2": "nats-2:4223",
    }
    assert "s3cret" not in str(DOCUMENT)
    assert "gateway:" not in str(DOCUMENT["servers"])
    assert DOCUMENT["info"]["version"] == "1.2.3"
    assert DOCUMENT["asyncapi"] == "3.0.0"
