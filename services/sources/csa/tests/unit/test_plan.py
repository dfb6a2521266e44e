"""The csa plan: what one fetch inserts, updates, ages out and which change facts it records, decided
over what the store holds without a database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from fmcsa_events.models import ChangeKind, Counts
from fmcsa_source_csa.domain.changes import Held, HeldBasic, plan
from fmcsa_source_csa.domain.model import (
    BasicScore,
    CarrierFacts,
    CsaFetch,
    Flag,
    FlagReason,
    PercentileStatus,
    SafetyRating,
)
from fmcsa_source_kit.plan import Observation, Plan

DOT = "2847193"
T0 = datetime(2025, 11, 4, 15, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=31)
REQUEST = UUID("00000000-0000-4000-8000-000000000022")
NOT_PUBLIC = Flag(None, FlagReason.NOT_PUBLIC)
CARRIER = CarrierFacts(
    dot_number=int(DOT), legal_name="ACME BUS LINES", safety_rating=SafetyRating.SATISFACTORY
)
MOVED = ChangeKind.BASIC_PERCENTILE_CHANGED


def public(basics_id: int, percentile: str, *, threshold: int = 50, name: str | None = None) -> BasicScore:
    value = Decimal(percentile)
    return BasicScore(
        basics_id=basics_id,
        code=None,
        name=name,
        percentile=value,
        percentile_status=PercentileStatus.PUBLIC,
        measure=Decimal("1.5"),
        threshold=threshold,
        intervention_alert=Flag(value >= threshold),
        on_road_alert=Flag(False),
        serious_violation=Flag(False),
        inspections_with_violation=1,
        violations=1,
        run_date=None,
    )


def hidden(basics_id: int) -> BasicScore:
    return replace(
        public(basics_id, "0"),
        percentile=None,
        percentile_status=PercentileStatus.NOT_PUBLIC,
        intervention_alert=NOT_PUBLIC,
        on_road_alert=NOT_PUBLIC,
    )


def fetch(*basics: BasicScore, at: datetime = T0, carrier: CarrierFacts = CARRIER) -> CsaFetch:
    return CsaFetch(
        dot=DOT,
        retrieved_at=at,
        upstream_as_of=datetime(at.year, at.month, 1, tzinfo=UTC),
        carrier=carrier,
        basics=basics,
    )


def seen(fetched: CsaFetch) -> Observation:
    return Observation(
        request_id=REQUEST, dot=DOT, observed_at=fetched.retrieved_at, upstream_as_of=fetched.upstream_as_of
    )


def held_after(fetched: CsaFetch, planned: Plan[CarrierFacts | BasicScore], before: Held | None) -> Held:
    """What a store holds once it has executed `planned` for `fetched` over `before` (the store's
    rules in small: written rows take the fetch's values, aged-out rows are marked, seen rows move on).
    """
    at = fetched.retrieved_at
    basics = dict(before.basics) if before is not None else {}
    for basic in fetched.basics:
        row = basics.get(basic.basics_id)
        if basic in planned.insert or basic in planned.update or row is None:
            basics[basic.basics_id] = HeldBasic(basic, basic.content_hash(), at)
        elif row.last_seen_at <= at:
            basics[basic.basics_id] = replace(row, last_seen_at=at)
    for gone in planned.age_out:
        assert isinstance(gone, BasicScore)
        basics[gone.basics_id] = replace(basics[gone.basics_id], absent_since=at)
    late = before is not None and before.last_seen_at > at
    carrier = before.carrier if late and before is not None else fetched.carrier
    return Held(
        dot=DOT,
        carrier=carrier,
        carrier_hash=carrier.content_hash(),
        last_seen_at=before.last_seen_at if late and before is not None else at,
        upstream_as_of=fetched.upstream_as_of,
        basics=basics,
    )


def kinds(planned: Plan[CarrierFacts | BasicScore]) -> list[tuple[ChangeKind, str]]:
    return [(change.kind, change.subject) for change in planned.changes]


def test_a_first_fetch_is_a_baseline_that_inserts_every_record_and_plans_no_change() -> None:
    first = fetch(public(11, "70"), public(12, "20"), hidden(15))
    planned = plan(None, first, seen(first))
    assert planned.insert == (CARRIER, public(11, "70"), public(12, "20"), hidden(15))
    assert (planned.update, planned.age_out, planned.changes) == ((), (), ())
    assert planned.counts == Counts(fetched=4, inserted=4, updated=0, unchanged=0)


def test_a_carrier_without_basics_is_one_record() -> None:
    first = fetch()
    assert plan(None, first, seen(first)).counts == Counts(fetched=1, inserted=1, updated=0, unchanged=0)


@pytest.mark.parametrize("later", [False, True], ids=["same instant", "a month later"])
def test_the_same_fetch_planned_over_what_it_produced_is_empty(later: bool) -> None:
    first = fetch(public(11, "70"), public(12, "20"), hidden(15))
    held = held_after(first, plan(None, first, seen(first)), None)
    again = replace(first, retrieved_at=T1) if later else first
    planned = plan(held, again, seen(again))
    assert planned.is_empty
    assert planned.counts == Counts(fetched=4, inserted=0, updated=0, unchanged=4)


def test_the_same_request_redelivered_after_a_change_plans_nothing_new() -> None:
    first = fetch(public(11, "34"))
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(public(11, "41"), at=T1)
    planned = plan(held, second, seen(second))
    assert kinds(planned) == [(ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving")]
    assert plan(held_after(second, planned, held), second, seen(second)).is_empty


def test_a_moved_percentile_updates_that_basic_and_plans_its_change() -> None:
    first = fetch(public(11, "34"), public(12, "20"))
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(public(11, "41"), public(12, "20"), at=T1)
    planned = plan(held, second, seen(second))
    assert planned.update == (public(11, "41"),)
    assert kinds(planned) == [(ChangeKind.BASIC_PERCENTILE_CHANGED, "unsafe_driving")]
    assert planned.counts == Counts(fetched=3, inserted=0, updated=1, unchanged=2)
    [change] = planned.changes
    assert (change.request_id, change.dot, change.observed_at) == (REQUEST, DOT, T1)
    assert change.upstream_as_of == second.upstream_as_of


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (public(11, "40"), public(11, "60"), [MOVED, ChangeKind.BASIC_ALERT_STARTED]),
        (public(11, "60"), public(11, "40"), [MOVED, ChangeKind.BASIC_ALERT_CLEARED]),
        (hidden(11), public(11, "40"), [ChangeKind.BASIC_BECAME_PUBLIC]),
        (public(11, "40"), hidden(11), [ChangeKind.BASIC_BECAME_NOT_PUBLIC]),
    ],
    ids=["alert started", "alert cleared", "became public", "became not public"],
)
def test_each_change_kind_is_planned_with_the_update_that_causes_it(
    before: BasicScore, after: BasicScore, expected: list[ChangeKind]
) -> None:
    first = fetch(before)
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(after, at=T1)
    planned = plan(held, second, seen(second))
    assert [change.kind for change in planned.changes] == expected
    assert {change.subject for change in planned.changes} == {"unsafe_driving"}
    assert planned.update == (after,)


def test_a_vanished_basic_ages_out_once_uncounted_and_comes_back_as_an_update() -> None:
    first = fetch(public(11, "34"), public(12, "20"))
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(public(11, "34"), at=T1)
    planned = plan(held, second, seen(second))
    assert planned.age_out == (public(12, "20"),)
    assert kinds(planned) == [(ChangeKind.BASIC_BECAME_NOT_PUBLIC, "hos_compliance")]
    assert planned.counts == Counts(fetched=2, inserted=0, updated=0, unchanged=2)

    held = held_after(second, planned, held)
    assert held.basics[12].absent_since == T1
    third = replace(second, retrieved_at=T1 + timedelta(days=1))
    assert plan(held, third, seen(third)).is_empty  # aged out once, not again

    back = fetch(public(11, "34"), public(12, "20"), at=T1 + timedelta(days=2))
    planned = plan(held, back, seen(back))
    assert planned.update == (public(12, "20"),)  # the same hash, but it was absent
    assert kinds(planned) == [(ChangeKind.BASIC_BECAME_PUBLIC, "hos_compliance")]


def test_a_new_basic_is_inserted_beside_held_ones() -> None:
    first = fetch(public(11, "34"))
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(public(11, "34"), public(16, "10"), at=T1)
    planned = plan(held, second, seen(second))
    assert planned.insert == (public(16, "10"),)
    assert kinds(planned) == [(ChangeKind.BASIC_BECAME_PUBLIC, "basic_16")]
    assert planned.counts == Counts(fetched=3, inserted=1, updated=0, unchanged=2)


def test_new_carrier_facts_update_the_carrier_and_are_no_change_fact() -> None:
    first = fetch(public(11, "34"))
    held = held_after(first, plan(None, first, seen(first)), None)
    rated = replace(CARRIER, safety_rating=SafetyRating.CONDITIONAL)
    second = fetch(public(11, "34"), at=T1, carrier=rated)
    planned = plan(held, second, seen(second))
    assert planned.update == (rated,)
    assert planned.changes == ()
    assert planned.counts == Counts(fetched=2, inserted=0, updated=1, unchanged=1)


def test_labels_alone_are_no_update() -> None:
    first = fetch(public(11, "34", name="Unsafe Driving"))
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(public(11, "34", name="Unsafe Driving (renamed)"), at=T1)
    planned = plan(held, second, seen(second))
    assert planned.is_empty
    assert planned.counts == Counts(fetched=2, inserted=0, updated=0, unchanged=2)


def test_a_late_older_fetch_overwrites_nothing_ages_nothing_out_and_changes_nothing() -> None:
    newer = fetch(public(11, "60"), public(12, "20"), at=T1)
    held = held_after(newer, plan(None, newer, seen(newer)), None)
    late = fetch(public(11, "34"), at=T0, carrier=replace(CARRIER, legal_name="OLD NAME"))
    planned = plan(held, late, seen(late))
    assert planned.is_empty
    assert planned.counts == Counts(fetched=2, inserted=0, updated=0, unchanged=2)


def test_counts_always_cover_the_fetched_records() -> None:
    first = fetch(public(11, "34"), public(12, "20"), hidden(15))
    held = held_after(first, plan(None, first, seen(first)), None)
    second = fetch(public(11, "41"), hidden(15), public(16, "5"), at=T1)
    counts = plan(held, second, seen(second)).counts
    assert counts.fetched == second.record_count == counts.inserted + counts.updated + counts.unchanged
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 2)
