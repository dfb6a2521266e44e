from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from fmcsa_events import subjects
from fmcsa_events.envelope import Envelope, MissingHeader, envelope_for, event_id
from fmcsa_events.identifiers import InvalidDotNumber, InvalidSource
from fmcsa_events.models import (
    EVENT_TYPES,
    CompanyRegistered,
    ScheduleChanged,
    SourceFailed,
    SyncRequested,
    Trigger,
)

NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
RID = UUID("6f1c2a7e-0000-4000-8000-000000000001")


def scheduled() -> SyncRequested:
    return SyncRequested(
        request_id=RID,
        dot="2847193",
        source="csa",
        trigger=Trigger.SCHEDULED,
        requested_at=NOW,
        deadline=NOW + timedelta(minutes=30),
        slot=NOW,
    )


def test_subject_builders_refuse_bad_dot_and_source() -> None:
    assert subjects.sync_requested("csa", "0042") == "fmcsa.evt.sync_requested.csa.42"
    with pytest.raises(InvalidDotNumber):
        subjects.sync_requested("csa", "42.*")
    with pytest.raises(InvalidDotNumber):
        subjects.company_registered(">")
    with pytest.raises(InvalidSource):
        subjects.sync_requested("csa.>", "42")
    with pytest.raises(ValueError, match="token"):
        subjects.dead_letter("status", "bad reason")


def test_every_event_has_a_subject_under_the_stream_wildcard() -> None:
    assert subjects.subject_for(scheduled()) == "fmcsa.evt.sync_requested.csa.2847193"
    assert subjects.subject_for(CompanyRegistered(dot="7")) == "fmcsa.evt.company_registered.7"
    assert subjects.subject_for(ScheduleChanged(source="violations", cron="0 * * * *")) == (
        "fmcsa.evt.schedule_changed.violations"
    )


def test_ids_are_deterministic_for_slots_and_outcomes() -> None:
    assert event_id(scheduled()) == "csa:2847193:20261123T0630Z"
    failed = SourceFailed(
        request_id=RID,
        dot="2847193",
        source="csa",
        kind="timeout",
        retryable=True,
        attempts=2,
        message="late",
        finished_at=NOW,
    )
    assert event_id(failed) == f"outcome:{RID}"
    assert (
        event_id(scheduled().model_copy(update={"trigger": Trigger.MANUAL, "slot": None})) == f"request:{RID}"
    )
    assert event_id(CompanyRegistered(dot="7")) != event_id(CompanyRegistered(dot="7"))


def test_envelope_round_trips_through_headers_and_links_cause() -> None:
    request = scheduled()
    cause = envelope_for(request, producer="scheduler", occurred_at=NOW)
    outcome = SourceFailed(
        request_id=RID,
        dot="2847193",
        source="csa",
        kind="timeout",
        retryable=False,
        attempts=1,
        message="late",
        finished_at=NOW,
    )
    envelope = envelope_for(outcome, producer="source-csa", occurred_at=NOW, cause=cause)
    assert envelope.correlation_id == str(RID)
    assert envelope.causation_id == cause.event_id
    assert Envelope.from_headers(envelope.to_headers()) == envelope


def test_missing_headers_are_named() -> None:
    with pytest.raises(MissingHeader, match="Fmcsa-Type"):
        Envelope.from_headers({"Nats-Msg-Id": "x"})


def test_every_event_type_declares_its_subject_tokens_and_each_is_a_field() -> None:
    assert set(subjects.SUBJECT_TOKENS) == {cls.TYPE for cls in EVENT_TYPES}
    for cls in EVENT_TYPES:
        assert set(subjects.SUBJECT_TOKENS[cls.TYPE]) <= set(cls.model_fields), cls.TYPE
    assert subjects.subject_template(SyncRequested.TYPE) == "fmcsa.evt.sync_requested.{source}.{dot}"
    assert subjects.subject_template("webhook_resend_requested") == "fmcsa.evt.webhook_resend_requested"
