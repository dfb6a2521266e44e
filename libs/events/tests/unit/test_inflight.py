from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from fmcsa_events.identifiers import InvalidDotNumber, InvalidSource
from fmcsa_events.inflight import InflightMarker, inflight_key
from fmcsa_events.models import SyncRequested, Trigger

NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
RID = UUID("6f1c2a7e-0000-4000-8000-000000000001")


def manual() -> SyncRequested:
    return SyncRequested(
        request_id=RID,
        dot="2847193",
        source="csa",
        trigger=Trigger.MANUAL,
        requested_by="ops@example.com",
        requested_at=NOW,
        deadline=NOW + timedelta(minutes=30),
    )


def test_the_key_is_source_dot_and_refuses_what_is_not_one() -> None:
    assert inflight_key("csa", "2847193") == "csa.2847193"
    assert inflight_key("violations", "00042") == "violations.42"
    with pytest.raises(InvalidDotNumber):
        inflight_key("csa", "42.>")
    with pytest.raises(InvalidSource):
        inflight_key("csa.*", "42")


def test_a_marker_round_trips_and_carries_the_requests_facts() -> None:
    marker = InflightMarker.for_request(manual(), taken_at=NOW)
    assert marker.request_id == RID
    assert marker.requested_by == "ops@example.com"
    assert marker.deadline == NOW + timedelta(minutes=30)
    assert InflightMarker.decode(marker.encode()) == marker


@pytest.mark.parametrize("data", [None, b"", b"not json", b'{"request_id": "x"}'])
def test_an_unreadable_marker_decodes_to_none(data: bytes | None) -> None:
    assert InflightMarker.decode(data) is None


def test_a_marker_is_stale_from_its_deadline_on() -> None:
    marker = InflightMarker.for_request(manual(), taken_at=NOW)
    assert not marker.is_stale(NOW + timedelta(minutes=29))
    assert marker.is_stale(NOW + timedelta(minutes=30))
