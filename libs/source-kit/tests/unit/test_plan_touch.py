"""`Plan.touch`: writes of unchanged records (times confirmed, history kept) count as unchanged and
make the plan non-empty."""

from __future__ import annotations

from fmcsa_events.models import Counts
from fmcsa_source_kit.plan import Plan


def test_a_plan_of_nothing_is_empty_and_counts_nothing() -> None:
    plan: Plan[str] = Plan()
    assert plan.is_empty
    assert plan.counts == Counts(fetched=0, inserted=0, updated=0, unchanged=0)


def test_touched_records_count_as_unchanged_and_the_plan_writes() -> None:
    plan: Plan[str] = Plan(touch=("confirmed",), unchanged=1)
    assert not plan.is_empty
    assert plan.counts == Counts(fetched=1, inserted=0, updated=0, unchanged=1)


def test_counts_cover_inserted_updated_and_unchanged_records() -> None:
    plan: Plan[str] = Plan(insert=("a", "b"), update=("c",), touch=("d",), unchanged=2)
    assert plan.counts == Counts(fetched=5, inserted=2, updated=1, unchanged=2)
