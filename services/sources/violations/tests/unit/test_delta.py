"""The pure delta logic (`domain.delta`): the delta plan against the full plan, the split of a batched
answer, the batching rule and the reconciliation rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from violations_support import DOT, row

from fmcsa_events.models import ChangeKind, ErrorKind
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.plan import Observation
from fmcsa_source_violations.domain.changes import Held, HeldRow, plan
from fmcsa_source_violations.domain.delta import (
    Batch,
    ForeignRow,
    Mark,
    align_ordinals,
    batches,
    delta_plan,
    merged,
    needs_reconciliation,
    per_carrier,
    split,
    where_clause,
)
from fmcsa_source_violations.domain.model import Page, Violation, ViolationsFetch
from fmcsa_source_violations.domain.parse import assign_ordinals, parse_page, parse_row

T0 = datetime(2025, 11, 4, 14, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
AS_OF = datetime(2025, 10, 21, 9, 12, 44, tzinfo=UTC)
REQUEST = UUID("00000000-0000-4000-8000-000000000024")
SEEN = Observation(REQUEST, DOT, T1, AS_OF)

A = row(viol_code="39347E", oos_indicator="true", oos_weight="2", viol_unit="1")
B = row(unique_id="897734501", insp_date="14-MAR-25", basic_desc="Hours-of-Service Compliance")
C = row(unique_id="871150296", insp_date="19-JUN-24", basic_desc="Unsafe Driving", viol_unit="D")
NEW = row(
    unique_id="912000777", insp_date="28-OCT-25", viol_code="3965A", oos_indicator="true", oos_weight="2"
)


def held(rows: list[Violation], aged: list[Violation] | None = None) -> Held:
    current = [HeldRow(v, changed_at=T0, aged_out=False) for v in assign_ordinals(rows)]
    gone = [HeldRow(v, changed_at=T0, aged_out=True) for v in assign_ordinals(aged or [])]
    return Held(dot=DOT, last_fetched_at=T0, upstream_as_of=AS_OF, rows=tuple(current + gone))


def fetch(rows: list[Violation] | tuple[Violation, ...]) -> ViolationsFetch:
    return ViolationsFetch(dot=DOT, retrieved_at=T1, upstream_as_of=AS_OF, records=assign_ordinals(rows))


def test_a_delta_with_new_rows_plans_what_a_full_read_plans_but_ages_nothing_out() -> None:
    before = held([A, B, C])
    delta = delta_plan(before, fetch([NEW]), SEEN)
    full = plan(before, fetch([A, B, C, NEW]), SEEN)
    assert delta.insert == full.insert == (NEW,)
    assert delta.changes == full.changes
    assert [change.kind for change in delta.changes] == [ChangeKind.VIOLATIONS_ADDED]
    assert (delta.counts.fetched, delta.counts.inserted, delta.counts.unchanged) == (1, 1, 0)
    # a full read without C ages C out; the delta never does
    assert plan(before, fetch([A, B, NEW]), SEEN).age_out == (C,)
    assert delta_plan(before, fetch([NEW]), SEEN).age_out == ()


def test_a_corrected_row_is_updated_as_a_full_read_updates_it() -> None:
    before = held([A, B, C])
    corrected = row(
        unique_id="897734501",
        insp_date="14-MAR-25",
        basic_desc="Hours-of-Service Compliance",
        severity_weight="7",
    )
    delta = delta_plan(before, fetch([corrected]), SEEN)
    full = plan(before, fetch([A, corrected, C]), SEEN)
    assert delta.update == full.update == (corrected,)
    assert delta.supersede == full.supersede
    assert delta.changes == full.changes == ()
    assert (delta.counts.fetched, delta.counts.updated, delta.counts.unchanged) == (1, 1, 0)


def test_rows_the_delta_brings_again_are_unchanged_and_an_empty_delta_plans_nothing() -> None:
    before = held([A, B, C])
    again = delta_plan(before, fetch([A, B]), SEEN)
    assert again.is_empty
    assert (again.counts.fetched, again.counts.unchanged) == (2, 2)
    assert delta_plan(before, fetch([]), SEEN).is_empty


def test_a_row_back_after_aging_out_is_added_again_as_in_a_full_plan() -> None:
    before = held([A, B], aged=[C])
    delta = delta_plan(before, fetch([C]), SEEN)
    full = plan(before, fetch([A, B, C]), SEEN)
    assert delta.update == full.update == (C,)
    assert delta.changes == full.changes
    assert [change.kind for change in delta.changes] == [ChangeKind.VIOLATIONS_ADDED]


def test_the_merged_window_is_what_the_summary_describes() -> None:
    before = held([A, B], aged=[C])
    window = merged(before, fetch([NEW]))
    assert {v.key for v in window.records} == {A.key, B.key, NEW.key}
    assert window.retrieved_at == T1


def test_a_partial_duplicate_group_keeps_the_ordinal_of_the_row_it_is() -> None:
    twin = row(severity_weight="1")  # same (unique_id, viol_code, viol_unit) as `row()`, other content
    plain = row()
    before = held([plain, twin])
    ordinals = {v.content_hash: v.ordinal for v in assign_ordinals([plain, twin])}
    aligned = align_ordinals(before, assign_ordinals([twin]))
    assert [v.ordinal for v in aligned] == [ordinals[twin.content_hash]]
    bare = ViolationsFetch(dot=DOT, retrieved_at=T1, upstream_as_of=AS_OF, records=aligned)
    assert delta_plan(before, bare, SEEN).is_empty
    third = row(severity_weight="2")
    assert [v.ordinal for v in align_ordinals(before, assign_ordinals([third]))] == [2]


def test_split_gives_every_asked_carrier_its_rows_and_refuses_a_foreign_one() -> None:
    other = parse_row({**_raw(), "dot_number": "1000001"}, "1000001")
    dup = row()
    parts = split([DOT, "1000001", "1000002"], [dup, other, dup])
    assert [v.ordinal for v in parts[DOT]] == [0, 1]
    assert parts["1000001"] == (other,)
    assert parts["1000002"] == ()
    with pytest.raises(ForeignRow):
        split(["1000001"], [dup])


def test_per_carrier_marks_take_the_answer_high_water_or_keep_the_batch_mark() -> None:
    batch = Batch((DOT,), T0, ("1000002",))
    assert per_carrier(batch, [A], high_water=T1)["1000002"] == ((), T1)
    assert per_carrier(batch, [], high_water=None)[DOT] == ((), T0)


def test_batches_respect_the_url_budget_and_the_count_and_group_by_mark() -> None:
    pending = [(str(1000000 + n), T0) for n in range(1, 1001)]
    cut = batches(pending, url_budget=6000, max_carriers=10_000)
    assert sum(len(b.dots) for b in cut) == 1000
    assert all(len(quote(b.where, safe="")) <= 6000 for b in cut)
    assert len(cut) == 3  # about 370 DOTs of 7 digits fit in 6,000 characters
    assert [len(b.dots) for b in batches(pending, url_budget=10**9, max_carriers=400)] == [400, 400, 200]
    mixed = batches([("3", None), ("1", T1), ("2", T0)], url_budget=6000, max_carriers=100)
    assert mixed == [Batch(("2", "1"), T0, ("3",))]
    assert mixed[0].where == (
        "(dot_number IN ('2','1') AND :updated_at > '2025-11-04T14:00:00.000Z') OR dot_number IN ('3')"
    )
    assert batches([("3", None), ("1", T1), ("2", T0)], url_budget=6000, max_carriers=2) == [
        Batch(("2", "1"), T0),
        Batch((), None, ("3",)),
    ]
    assert Batch((), None, ("3",)).where == "dot_number IN ('3')"


def test_the_where_clause_takes_canonical_dots_only() -> None:
    with pytest.raises(ValueError, match="canonical"):
        where_clause(["1' OR '1'='1"], T0)
    with pytest.raises(ValueError, match="canonical"):
        where_clause([], None, ["7 OR 1=1"])
    assert where_clause([], None, ["7"]) == "dot_number IN ('7')"


@pytest.mark.parametrize(
    ("mark", "full"),
    [
        (None, True),
        (Mark(T0, None, None, AS_OF), True),  # never fully read
        (Mark(T0, T0, AS_OF, AS_OF), False),
        (Mark(T0, T0, AS_OF, AS_OF + timedelta(days=30)), True),  # a newer publication seen since
        (Mark(T0, T0 - timedelta(days=31), AS_OF, AS_OF), True),  # the period ran out
        (Mark(None, T0 - timedelta(days=30), AS_OF, AS_OF), False),
    ],
)
def test_when_a_carrier_needs_a_full_read(mark: Mark | None, full: bool) -> None:
    assert needs_reconciliation(mark, now=T0, period=timedelta(days=31)) is full


def _raw() -> dict[str, str]:
    return {
        "unique_id": "1",
        "insp_date": "02-SEP-25",
        "viol_code": "392.2",
        "oos_indicator": "false",
        "oos_weight": "0",
        "severity_weight": "1",
        "time_weight": "1",
        "viol_unit": "D",
    }


def _answer(*rows: dict[str, str]) -> bytes:
    return json.dumps(list(rows)).encode()


def test_a_page_carries_the_newest_updated_at_and_a_batch_page_takes_the_batch_dots() -> None:
    first = {**_raw(), "dot_number": "1000001", ":updated_at": "2026-11-27T00:00:00.000Z"}
    second = {**_raw(), "dot_number": "1000002", ":updated_at": "2026-12-25T00:00:01.250Z"}
    page = parse_page(200, {}, _answer(first, second), frozenset({"1000001", "1000002"}), T0, **_KW)
    assert isinstance(page, Page)
    assert page.high_water == datetime(2026, 12, 25, 0, 0, 1, 250000, tzinfo=UTC)
    refused = parse_page(200, {}, _answer(first, second), frozenset({"1000001"}), T0, **_KW)
    assert isinstance(refused, Failure)
    assert refused.kind is ErrorKind.INVALID_RESPONSE
    assert "one of 1 DOTs" in refused.message
    bad = parse_page(200, {}, _answer({**first, ":updated_at": "yesterday"}), "1000001", T0, **_KW)
    assert isinstance(bad, Failure)
    assert bad.kind is ErrorKind.INVALID_RESPONSE
    without = parse_page(200, {}, _answer({**_raw(), "dot_number": "1000001"}), "1000001", T0, **_KW)
    assert isinstance(without, Page)
    assert without.high_water is None


_KW: dict[str, Any] = {"token_sent": False, "retry_after_max_s": 60.0}
