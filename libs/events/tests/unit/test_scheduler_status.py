"""The scheduler's status document: what the scheduler encodes, the gateway decodes the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from fmcsa_events.scheduler_status import SCHEDULER_STATUS_KEY, SchedulerSourceStatus, SchedulerStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_status() -> SchedulerStatus:
    csa = SchedulerSourceStatus(
        enabled=True,
        interval_minutes=360,
        cron=None,
        schedule_since=NOW - timedelta(days=2),
        next_due_at=NOW + timedelta(minutes=3),
        next_slot_at=None,
        due=1,
        published=4,
        in_flight=2,
        backing_off=0,
        skipped={"in_flight": 1},
    )
    return SchedulerStatus(
        replica="scheduler-1",
        enabled=True,
        running=True,
        ready=True,
        heartbeat_at=NOW,
        started_at=NOW - timedelta(minutes=5),
        last_tick_at=NOW,
        checkpoint_at=None,
        companies=3,
        due=1,
        in_flight=2,
        skipped={"in_flight": 1},
        rejected_schedules=0,
        undecodable_events=0,
        sources={"csa": csa},
    )


def test_the_document_round_trips_through_its_bytes() -> None:
    status = a_status()
    assert SchedulerStatus.decode(status.encode()) == status


def test_the_key_lives_in_the_state_bucket_namespace_of_the_scheduler() -> None:
    assert SCHEDULER_STATUS_KEY == "scheduler.status"


@pytest.mark.parametrize("data", [None, b"", b"not json", b"[]", b'{"replica": "r"}'])
def test_what_is_not_a_document_is_refused(data: bytes | None) -> None:
    with pytest.raises(ValidationError):
        SchedulerStatus.decode(data)


def test_a_naive_heartbeat_is_refused() -> None:
    raw = a_status().model_dump(mode="json") | {"heartbeat_at": "2026-03-01T12:00:00"}
    with pytest.raises(ValidationError):
        SchedulerStatus.model_validate(raw)
