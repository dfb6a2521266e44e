"""Property: any interleaving, with duplicates and late arrivals, of a history folds to the same state
as the de-duplicated, ordered history; and batch boundaries never matter."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from status_support import Timed, arrivals, fold_all, histories, state_of

from fmcsa_status.domain.memory import MemoryProjection

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), history=histories())
def test_any_interleaving_with_duplicates_folds_to_the_ordered_state(
    data: st.DataObject, history: list[Timed]
) -> None:
    ordered = fold_all([t.fact for t in history], batch=1)
    arrived = data.draw(arrivals(history))
    sizes = data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=4))
    shuffled = fold_all([t.fact for t in arrived], batch=sizes)
    assert state_of(shuffled) == state_of(ordered)


@PROPERTY
@given(history=histories(), sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_batch_boundaries_do_not_change_the_state(history: list[Timed], sizes: list[int]) -> None:
    facts = [t.fact for t in history]
    assert state_of(fold_all(facts, batch=sizes)) == state_of(fold_all(facts))


@PROPERTY
@given(history=histories())
def test_folding_the_history_twice_changes_nothing(history: list[Timed]) -> None:
    facts = [t.fact for t in history]
    once = fold_all(facts)
    twice = MemoryProjection(
        dict(once.entries),
        dict(once.pairs),
        dict(once.companies),
        dict(once.totals),
        dict(once.daily),
        dict(once.changes),
        dict(once.history),
        dict(once.carriers),
        dict(once.violations),
    )
    folded = twice.apply(facts)
    assert not folded.rejected
    assert state_of(twice) == state_of(once)


@PROPERTY
@given(history=histories())
def test_totals_agree_with_the_rows(history: list[Timed]) -> None:
    p = fold_all([t.fact for t in history])
    every = p.totals.get("all")
    requests = sum(1 for e in p.entries.values() if e.has_request)
    succeeded = sum(1 for e in p.entries.values() if e.status == "succeeded")
    failed = sum(1 for e in p.entries.values() if e.status == "failed")
    active = [c for c in p.companies.values() if c.active]
    assert (
        (every.requests, every.succeeded, every.failed)
        if every
        else (requests, succeeded, failed) == (0, 0, 0)
    )
    if every is not None:
        assert (every.requests, every.succeeded, every.failed) == (requests, succeeded, failed)
        assert every.companies == len(active)
        assert every.failing == sum(c.failing for c in active)
        assert every.never_synced == sum(c.never_synced for c in active)
    for source in {k[1] for k in p.pairs}:
        mine = [q for q in p.pairs.values() if q.source == source]
        t = p.totals[source.value]
        assert t.companies == len(mine)
        assert t.failing == sum(q.failing for q in mine)
        assert t.never_synced == sum(not q.synced for q in mine)
        assert t.requests == sum(q.requests for q in mine)
