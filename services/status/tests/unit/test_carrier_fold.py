"""The carrier record in the fold (pure): derived from each source's newest success, order-safe, with
the violation rows of the newest violations summary and its pages, and the same for an old summary (the
upcast)."""

from __future__ import annotations

from status_support import (
    authority_summary,
    facts,
    failed,
    fold_all,
    paged,
    request,
    synced,
    violations_summary,
)

from fmcsa_events.identifiers import SourceKey
from fmcsa_status.domain.fold import Loaded, fold, settle

DOT = "2847193"

CSA = {
    "basics": [{"id": 11, "name": "Unsafe Driving", "percentile": "72"}],
    "alerts": [],
    "legal_name": "ACME FREIGHT LINES INC",
    "allowed_to_operate": True,
    "safety_rating": "satisfactory",
    "authority": {"common": "active", "contract": "none", "broker": "none"},
}


def test_a_success_makes_the_record_and_a_later_failure_leaves_it() -> None:
    first, second = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.CSA, 10)
    p = fold_all(facts([first, synced(first, 1, summary=CSA), second, failed(second, 11)]))
    record = p.carriers[DOT]
    assert record.legal_name == "ACME FREIGHT LINES INC"
    assert record.risk == "green"
    assert record.sources is not None
    assert record.sources["csa"]["request_id"] == str(first.request_id)


def test_the_newest_request_wins_whatever_the_arrival_order() -> None:
    old, new = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.CSA, 10)
    red = {**CSA, "safety_rating": "unsatisfactory"}
    in_order = [old, synced(old, 1, summary=CSA), new, synced(new, 11, summary=red)]
    late = [old, new, synced(new, 11, summary=red), synced(old, 30, summary=CSA)]  # the old one ends last
    for history in (in_order, late):
        record = fold_all(facts(history)).carriers[DOT]
        assert record.risk == "red"
        assert [r["code"] for r in record.risk_reasons or []] == ["rating_unsatisfactory"]
    assert fold_all(facts(in_order)).carriers == fold_all(facts(late)).carriers


def test_each_source_adds_its_groups() -> None:
    csa, authority = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.AUTHORITY, 0)
    p = fold_all(
        facts(
            [
                csa,
                synced(csa, 1, summary=CSA),
                authority,
                synced(authority, 2, summary=authority_summary(500_000)),
            ]
        )
    )
    record = p.carriers[DOT]
    assert record.authority is not None
    assert record.authority["source"] == "authority"
    assert record.docket_keys == ",MC123456,"
    assert record.insurance is not None
    assert record.insurance["bipd_on_file"] == 500_000
    assert record.risk == "red"


def test_the_violation_rows_are_the_newest_summarys_and_replace_the_older_ones() -> None:
    first, second = request(DOT, SourceKey.VIOLATIONS, 0), request(DOT, SourceKey.VIOLATIONS, 10)
    p = fold_all(facts([first, synced(first, 1, summary=violations_summary(5))]))
    assert [r.seq for r in p.violations[DOT]] == [0, 1, 2, 3, 4]
    p.apply(facts([second, synced(second, 11, summary=violations_summary(2, day=9))]))
    rows = p.violations[DOT]
    assert [(r.seq, r.inspected_on) for r in rows] == [(0, "2026-10-10"), (1, "2026-10-09")]
    group = p.carriers[DOT].violations
    assert group is not None
    assert (group["total"], group["listed"], group["complete"]) == (2, 2, True)


def test_an_old_violations_summary_without_rows_lists_none_and_says_so() -> None:
    req = request(DOT, SourceKey.VIOLATIONS, 0)
    old = {k: v for k, v in violations_summary(3).items() if k not in ("rows", "rows_complete")}
    p = fold_all(facts([req, synced(req, 1, summary=old)]))
    assert p.violations[DOT] == []
    group = p.carriers[DOT].violations
    assert group is not None
    assert (group["total"], group["listed"], group["complete"]) == (3, None, None)


def test_an_old_csa_summary_folds_to_the_record_of_one_with_null_new_keys() -> None:
    """The upcast through the fold: the same facts, with and without csa's added identity keys."""
    nulls = {**CSA, "dba_name": None, "status_code": None, "address": None}
    req = request(DOT, SourceKey.CSA, 0)
    old = fold_all(facts([req, synced(req, 1, summary=CSA)]))
    new = fold_all(facts([req, synced(req, 1, summary=nulls)]))
    assert old.carriers == new.carriers


def test_a_request_without_success_makes_no_record() -> None:
    req = request(DOT, SourceKey.CSA, 0)
    p = fold_all(facts([req, failed(req, 1)]))
    assert p.carriers == {}


def test_a_violations_fetch_listing_the_same_rows_rewrites_none() -> None:
    first, second = request(DOT, SourceKey.VIOLATIONS, 0), request(DOT, SourceKey.VIOLATIONS, 10)
    p = fold_all(facts([first, synced(first, 1, summary=violations_summary(4))]))
    loaded = Loaded(p.entries, p.pairs, p.companies, p.changes)
    same = facts([second, synced(second, 11, summary=violations_summary(4))])
    settled = settle(loaded, fold(loaded, same), {})
    assert settled.violations == {}  # the rows held stay as they are
    assert DOT in settled.carriers  # the record moves on: its provenance is the newer fetch's
    other = facts([second, synced(second, 11, summary=violations_summary(3))])
    assert [r.seq for r in settle(loaded, fold(loaded, other), {}).violations[DOT]] == [0, 1, 2]


def test_pages_make_every_row_whether_they_come_before_or_after_their_outcome() -> None:
    """A success listing 9 rows, 2 in its summary and the rest in 4 pages: every row, in order, held in
    `status_violation` whatever the order and batching; the record says 9 listed, complete; no page is
    left held once its outcome is folded."""
    req = request(DOT, SourceKey.VIOLATIONS, 0)
    *pages, outcome = paged(req, 1, 9)
    in_order = fold_all(facts([req, *pages, outcome]), batch=[1, 2])
    late = fold_all(facts([outcome, pages[2], req, pages[0], pages[3], pages[1], pages[0]]), batch=[3, 1])
    for p in (in_order, late):
        assert [r.seq for r in p.violations[DOT]] == list(range(9))
        assert p.pages == {}
        group = p.carriers[DOT].violations
        assert group is not None
        assert (group["total"], group["listed"], group["complete"]) == (9, 9, True)
    assert in_order.violations == late.violations
    dates = [r.inspected_on for r in in_order.violations[DOT]]
    assert dates == sorted(dates, reverse=True)


def test_an_older_requests_pages_never_join_the_newest_rows() -> None:
    old, new = request(DOT, SourceKey.VIOLATIONS, 0), request(DOT, SourceKey.VIOLATIONS, 10)
    *old_pages, old_outcome = paged(old, 1, 8, day=1)
    *new_pages, new_outcome = paged(new, 11, 3, day=9)
    p = fold_all(facts([old, new, *new_pages, new_outcome, *old_pages, old_outcome]), batch=2)
    assert [(r.seq, r.inspected_on) for r in p.violations[DOT]] == [
        (0, "2026-10-11"), (1, "2026-10-10"), (2, "2026-10-09")
    ]  # fmt: skip
    assert p.pages == {}
    waiting = request(DOT, SourceKey.VIOLATIONS, 20)
    *held, _ = paged(waiting, 21, 5)
    p.apply(facts([waiting, *held]))  # its outcome is still to come: held, the rows unchanged
    assert len(p.pages) == 2
    assert len(p.violations[DOT]) == 3
