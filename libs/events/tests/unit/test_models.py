from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from pydantic import ValidationError

from fmcsa_events.models import (
    EVENT_BY_TYPE,
    EVENT_TYPES,
    CompanyRegistered,
    Counts,
    ErrorKind,
    Event,
    ScheduleChanged,
    SourceFailed,
    SourceSynced,
    SyncRequested,
    Trigger,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def request(**overrides: Any) -> SyncRequested:
    values: dict[str, Any] = {
        "request_id": uuid4(),
        "dot": "2847193",
        "source": "csa",
        "trigger": Trigger.SCHEDULED,
        "requested_at": NOW,
        "deadline": NOW + timedelta(minutes=30),
        "slot": NOW,
    }
    return SyncRequested(**{**values, **overrides})


def test_events_are_frozen() -> None:
    event = CompanyRegistered(dot="123")
    with pytest.raises(ValidationError):
        event.dot = "456"  # type: ignore[misc]


def test_every_event_type_is_unique_and_past_tense() -> None:
    types = [cls.TYPE for cls in EVENT_TYPES]
    assert len(types) == len(set(types))
    assert all(t.endswith(("ed", "ed_v2")) for t in types)
    assert set(EVENT_BY_TYPE) == set(types)


def test_unknown_fields_are_ignored_so_older_readers_survive_newer_writers() -> None:
    event = CompanyRegistered.model_validate({"dot": "123", "added_in_v9": True})
    assert event.dot == "123"


def test_dot_fields_refuse_injection_and_canonicalize() -> None:
    assert CompanyRegistered(dot="000123").dot == "123"
    with pytest.raises(ValidationError):
        CompanyRegistered(dot="1' OR '1'='1")


def test_scheduled_request_needs_its_slot_and_a_later_deadline() -> None:
    with pytest.raises(ValidationError, match="slot"):
        request(slot=None)
    with pytest.raises(ValidationError, match="deadline"):
        request(deadline=NOW)
    manual = request(trigger=Trigger.MANUAL, slot=None, requested_by="ops@example.com")
    assert manual.slot is None


def test_schedule_has_exactly_one_timing_within_bounds() -> None:
    assert ScheduleChanged(source="csa", interval_minutes=5).interval_minutes == 5
    assert ScheduleChanged(source="csa", interval_minutes=1440).interval_minutes == 1440
    assert ScheduleChanged(source="csa", cron="0 */6 * * *").cron == "0 */6 * * *"
    for bad in (
        {"interval_minutes": 4},
        {"interval_minutes": 1441},
        {},
        {"interval_minutes": 60, "cron": "* * * * *"},
    ):
        with pytest.raises(ValidationError):
            ScheduleChanged(source="csa", **bad)


def test_synced_duration_comes_from_its_times() -> None:
    synced = SourceSynced(
        request_id=uuid4(),
        dot="1",
        source="violations",
        counts=Counts(fetched=3, inserted=1, updated=1, unchanged=1),
        attempts=1,
        started_at=NOW,
        finished_at=NOW + timedelta(milliseconds=1500),
    )
    assert synced.duration_ms == 1500


def test_failed_needs_a_kind_of_the_vocabulary() -> None:
    with pytest.raises(ValidationError):
        SourceFailed(
            request_id=uuid4(),
            dot="1",
            source="csa",
            kind="exploded",
            retryable=False,
            attempts=1,
            message="x",
            finished_at=NOW,
        )
    assert {k.value for k in ErrorKind} == {
        "not_configured",
        "not_found",
        "rate_limited",
        "upstream_error",
        "timeout",
        "invalid_response",
        "suspect_drop",
        "internal",
    }


class Renamed(Event):
    TYPE: ClassVar[str] = "renamed_for_test"
    VERSION: ClassVar[int] = 3
    title: str
    note: str

    @staticmethod
    def upcast_v1_v2(old: dict[str, Any]) -> dict[str, Any]:
        return {"title": old["name"]}

    @staticmethod
    def upcast_v2_v3(old: dict[str, Any]) -> dict[str, Any]:
        return {**old, "note": ""}


def test_upcasters_are_found_by_name_in_version_order() -> None:
    upcasters = Renamed.upcasters()
    assert sorted(upcasters) == [1, 2]
    payload = {"name": "x"}
    for version in sorted(upcasters):
        payload = upcasters[version](payload)
    assert Renamed.model_validate(payload) == Renamed(title="x", note="")
