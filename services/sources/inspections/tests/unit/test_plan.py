"""The pure plan of one fetch: what the store inserts, updates and touches, and which change facts it records.

`executed` stands for the store: it applies a plan to what is held, so a plan can be checked against what
it produced (the store itself is tested in tests/integration/test_store.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind, Counts
from fmcsa_source_inspections.domain.changes import Current, Held, HeldSnapshot, Seen, SnapshotWrite, plan
from fmcsa_source_inspections.domain.content import content_hash
from fmcsa_source_inspections.domain.parse import parse_response
from fmcsa_source_inspections.domain.records import InspectionsFetch
from fmcsa_source_kit.plan import Plan

DOT = "2847193"
T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=7)
REQUEST = UUID("00000000-0000-4000-8000-000000000022")
NOTHING = Held()


@pytest.fixture
def body(examples_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((examples_dir / "saferwebapi-snapshot.json").read_bytes())
    return loaded


def fetch_of(body: dict[str, Any], at: datetime = T0) -> InspectionsFetch:
    result = parse_response(200, {}, json.dumps(body).encode(), DOT, at)
    assert isinstance(result, InspectionsFetch), result
    return result


def changed(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    copy.update(fields)
    copy["latest_update"] = "11/10/2025"
    return copy


def executed(held: Held, done: Plan[SnapshotWrite]) -> Held:
    """What the store holds after executing `done` over `held`."""
    current, versions = held.current, dict(held.versions)
    for write in (*done.insert, *done.update, *done.touch):
        versions[write.content_hash] = write.version
        if write.current is not None:
            current = HeldSnapshot(
                snapshot=write.fetch.snapshot,
                content_hash=write.content_hash,
                retrieved_at=write.current.retrieved_at,
                first_seen_at=write.current.first_seen_at,
                checked_at=write.current.checked_at,
            )
    return Held(current, versions)


def stored(*fetches: InspectionsFetch) -> Held:
    """What the store holds after storing `fetches` in this order."""
    held = NOTHING
    for fetch in fetches:
        held = executed(held, plan(held, fetch, request_id=REQUEST))
    return held


def test_the_first_fetch_is_a_baseline_insert_with_no_change(body: dict[str, Any]) -> None:
    fetch = fetch_of(body)
    first = plan(NOTHING, fetch, request_id=REQUEST)
    assert first.insert == (
        SnapshotWrite(
            fetch, content_hash(fetch.snapshot), Current(T0, T0, T0), Seen(T0, T0), new_version=True
        ),
    )
    assert (first.update, first.touch, first.age_out, first.changes) == ((), (), (), ())
    assert first.counts == Counts(fetched=1, inserted=1)


def test_the_same_fetch_against_what_it_produced_plans_nothing(body: dict[str, Any]) -> None:
    fetch = fetch_of(body)
    again = plan(stored(fetch), fetch, request_id=REQUEST)
    assert again.is_empty
    assert again.counts == Counts(fetched=1, unchanged=1)
    bumped = fetch_of(changed(body, operating_status="OUT-OF-SERVICE"), T1)
    after_update = stored(fetch, bumped)
    assert plan(after_update, bumped, request_id=REQUEST).is_empty  # a redelivered update records nothing


def test_the_same_content_later_confirms_the_times_and_changes_nothing(body: dict[str, Any]) -> None:
    held = stored(fetch_of(body))
    later = plan(held, fetch_of(body, T1), request_id=REQUEST)
    [touch] = later.touch
    assert touch.current == Current(retrieved_at=T1, first_seen_at=T0, checked_at=T1)
    assert (touch.version, touch.new_version) == (Seen(T0, T1), False)
    assert (later.insert, later.update, later.changes) == ((), (), ())
    assert later.counts == Counts(fetched=1, unchanged=1)


def test_a_respelled_answer_with_the_same_content_is_unchanged(body: dict[str, Any]) -> None:
    respelled = {k: v for k, v in body.items() if k not in ("us_inspections", "url")}
    respelled["united_states_inspections"] = {
        group: {key: str(value) for key, value in figures.items()}
        for group, figures in body["us_inspections"].items()
    }
    later = plan(stored(fetch_of(body)), fetch_of(respelled, T1), request_id=REQUEST)
    assert (later.insert, later.update, later.changes) == ((), (), ())
    assert later.counts == Counts(fetched=1, unchanged=1)


def test_other_content_is_an_update_with_a_new_version(body: dict[str, Any]) -> None:
    old, new = fetch_of(body), fetch_of(changed(body), T1)  # only latest_update moved: no change fact
    update = plan(stored(old), new, request_id=REQUEST)
    [write] = update.update
    assert write.current == Current(T1, T1, T1)
    assert (write.version, write.new_version) == (Seen(T1, T1), True)
    assert update.changes == ()
    assert update.counts == Counts(fetched=1, updated=1)


@pytest.mark.parametrize(
    ("fields", "kind", "subject"),
    [
        ({"operating_status": "OUT-OF-SERVICE"}, ChangeKind.OPERATING_STATUS_CHANGED, "operating_status"),
        (
            {"safety_rating": "CONDITIONAL", "safety_rating_date": "11/05/2025"},
            ChangeKind.SAFETY_RATING_CHANGED,
            "safety_rating",
        ),
        (
            {"united_states_crashes": {"fatal": 0, "injury": 1, "tow": 1, "total": 2}},
            ChangeKind.CRASHES_ADDED,
            "us",
        ),
    ],
)
def test_each_change_kind_is_planned_with_its_update(
    body: dict[str, Any], fields: dict[str, Any], kind: ChangeKind, subject: str
) -> None:
    old, new = fetch_of(body), fetch_of(changed(body, **fields), T1)
    update = plan(stored(old), new, request_id=REQUEST)
    assert len(update.update) == 1
    [change] = update.changes
    assert (change.kind, change.subject, change.dot, change.source) == (
        kind,
        subject,
        DOT,
        SourceKey.INSPECTIONS,
    )
    assert (change.request_id, change.observed_at) == (REQUEST, T1)
    assert change.upstream_as_of == datetime(2025, 11, 10, tzinfo=UTC)
    assert change.before != change.after


def test_an_oos_rate_move_is_planned_at_the_configured_threshold(body: dict[str, Any]) -> None:
    moved = changed(body)
    moved["us_inspections"]["vehicle"]["out_of_service_percent"] = "18.67%"  # two points up
    held, new = stored(fetch_of(body)), fetch_of(moved, T1)
    assert plan(held, new, request_id=REQUEST).changes == ()  # below the default 5 points
    sensitive = plan(held, new, request_id=REQUEST, oos_rate_change_points=Decimal(2))
    assert [(c.kind, c.subject) for c in sensitive.changes] == [(ChangeKind.OOS_RATE_CHANGED, "us_vehicle")]
    with pytest.raises(ValueError, match="positive"):
        plan(held, new, request_id=REQUEST, oos_rate_change_points=Decimal(0))


def test_an_older_fetch_of_other_content_is_kept_as_a_version_only(body: dict[str, Any]) -> None:
    newer = fetch_of(changed(body, operating_status="OUT-OF-SERVICE"), T1)
    older = fetch_of(body, T0)
    held = stored(newer)
    late = plan(held, older, request_id=REQUEST)
    [touch] = late.touch
    assert touch.current is None  # the newer snapshot stays current
    assert (touch.version, touch.new_version) == (Seen(T0, T0), True)
    assert (late.insert, late.update, late.changes) == ((), (), ())
    assert late.counts == Counts(fetched=1, unchanged=1)
    after = executed(held, late)
    assert after.current == held.current
    assert plan(after, older, request_id=REQUEST).is_empty


def test_an_older_fetch_of_the_same_content_widens_its_first_seen(body: dict[str, Any]) -> None:
    held = stored(fetch_of(body, T1))
    early = plan(held, fetch_of(body, T0), request_id=REQUEST)
    [touch] = early.touch
    assert (touch.current, touch.version, touch.new_version) == (None, Seen(T0, T1), False)
    assert early.counts == Counts(fetched=1, unchanged=1)


def test_content_coming_back_updates_its_kept_version(body: dict[str, Any]) -> None:
    a, b = body, changed(body, operating_status="OUT-OF-SERVICE")
    t2 = T1 + timedelta(days=7)
    back = plan(stored(fetch_of(a, T0), fetch_of(b, T1)), fetch_of(a, t2), request_id=REQUEST)
    [write] = back.update
    assert (write.version, write.new_version) == (Seen(T0, t2), False)
    assert write.current == Current(t2, t2, t2)
    assert [c.kind for c in back.changes] == [ChangeKind.OPERATING_STATUS_CHANGED]


def test_nothing_ever_ages_out(body: dict[str, Any]) -> None:
    fetches = [
        fetch_of(body, T0),
        fetch_of(changed(body, operating_status="OUT-OF-SERVICE"), T1),
        fetch_of(body, T0 - timedelta(days=1)),
    ]
    held = NOTHING
    for fetch in fetches:
        step = plan(held, fetch, request_id=REQUEST)
        assert step.age_out == ()
        assert step.counts.fetched == 1
        held = executed(held, step)
    assert len(held.versions) == 2
