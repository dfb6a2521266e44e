"""The pure plan: baseline, idempotence, each of the nine change kinds with before/after, counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from uuid import uuid4

from authority_support import DOT, NOW, ORDER, fetch, filing

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CHANGE_KINDS_BY_SOURCE, ChangeKind
from fmcsa_source_authority.domain import AuthorityFetch, AuthorityStatus, Docket, Filing, Held, Profile, plan
from fmcsa_source_kit.plan import Observation, Plan

TODAY = NOW.date()


def seen(f: AuthorityFetch) -> Observation:
    return Observation(uuid4(), DOT, f.retrieved_at, f.upstream_as_of)


def held_after(f: AuthorityFetch) -> Held:
    """What the store holds once `f` is stored: the plan's rows, as a store would load them."""
    p = plan(Held(), f, seen(f))
    return Held(
        profile=next(r for r in p.insert if isinstance(r, Profile)),
        dockets=tuple(r for r in p.insert if isinstance(r, Docket)),
        filings=tuple(r for r in p.insert if isinstance(r, Filing)),
    )


def changes(before: AuthorityFetch, after: AuthorityFetch) -> list[tuple[str, str, object, object]]:
    p = plan(held_after(before), after, seen(after))
    return [(c.kind.value, c.subject, c.before, c.after) for c in p.changes]


def test_a_first_fetch_is_a_baseline_that_inserts_everything_and_plans_no_change() -> None:
    first = fetch(oos_order=ORDER, bipd_on_file=500_000)
    p = plan(Held(), first, seen(first))
    assert p.changes == ()
    assert len(p.insert) == 1 + 1 + 2
    assert (p.counts.fetched, p.counts.inserted, p.counts.updated, p.counts.unchanged) == (4, 4, 0, 0)


def test_the_same_fetch_again_plans_nothing() -> None:
    first = fetch(
        filings=(
            filing(cancellation=TODAY - timedelta(days=1)),
            filing("P2", cancellation=TODAY + timedelta(days=9)),
        )
    )
    again = plan(held_after(first), first, seen(first))
    assert again.is_empty
    assert again.counts.unchanged == again.counts.fetched == 4
    assert again == Plan(unchanged=4)


def test_authority_status_changed_per_type_with_before_and_after() -> None:
    assert changes(fetch(), fetch(common=AuthorityStatus.INACTIVE, broker=AuthorityStatus.ACTIVE)) == [
        ("authority_status_changed", "common", "active", "inactive"),
        ("authority_status_changed", "broker", "none", "active"),
    ]


def test_authority_revocation_pending() -> None:
    assert changes(fetch(), fetch(common=AuthorityStatus.PENDING_REVOCATION)) == [
        ("authority_revocation_pending", "common", "active", "pending_revocation")
    ]
    # and back: the pending revocation withdrawn is a status change
    assert changes(fetch(common=AuthorityStatus.PENDING_REVOCATION), fetch()) == [
        ("authority_status_changed", "common", "pending_revocation", "active")
    ]


def test_an_authority_the_upstream_stops_reporting_is_no_change() -> None:
    assert changes(fetch(), fetch(contract=None)) == []


def test_docket_added_and_a_docket_gone_is_aged_out_without_a_change() -> None:
    assert changes(fetch(), fetch(dockets=("MC1034412", "FF7890"))) == [
        ("docket_added", "ff7890", None, "FF7890")
    ]
    before = fetch(dockets=("MC1034412", "FF7890"))
    p = plan(held_after(before), fetch(), seen(fetch()))
    assert p.changes == ()
    assert p.age_out == (Docket(DOT, "FF7890"),)


def test_oos_order_issued_and_lifted() -> None:
    order = {"date": "2026-03-01", "reason": "90 day failure to pay fine"}
    assert changes(fetch(), fetch(oos_order=ORDER)) == [("oos_order_issued", "oos_order", None, order)]
    assert changes(fetch(oos_order=ORDER), fetch()) == [("oos_order_lifted", "oos_order", order, None)]
    other = replace(ORDER, day=date(2026, 3, 5))
    assert [c[0] for c in changes(fetch(oos_order=ORDER), fetch(oos_order=other))] == [
        "oos_order_lifted",
        "oos_order_issued",
    ]


def test_insurance_filing_added() -> None:
    new = filing("CRG-2", kind="CARGO", coverage=100_000, form="34")
    after = fetch(filings=(filing(), filing("CRG-1", kind="CARGO", coverage=100_000), new))
    assert changes(fetch(), after) == [
        (
            "insurance_filing_added",
            "cargo_crg_2",
            None,
            {
                "type": "CARGO",
                "form": "34",
                "insurer": "GREAT PLAINS CASUALTY INC",
                "policy_number": "CRG-2",
                "coverage": 100_000,
                "effective": "2026-01-15",
                "cancellation": None,
            },
        )
    ]


def test_insurance_cancellation_pending_once_per_date() -> None:
    later = TODAY + timedelta(days=30)
    before, after = fetch(filings=(filing(),)), fetch(filings=(filing(cancellation=later),))
    ((kind, subject, was, now),) = changes(before, after)
    assert (kind, subject) == ("insurance_cancellation_pending", "bipd_gpc_77120")
    assert isinstance(was, dict)
    assert isinstance(now, dict)
    assert (was["cancellation"], now["cancellation"]) == (None, later.isoformat())
    assert changes(after, after) == []
    moved = fetch(filings=(filing(cancellation=later + timedelta(days=5)),))
    assert [c[0] for c in changes(after, moved)] == ["insurance_cancellation_pending"]


def test_insurance_cancelled_when_the_date_is_reached_and_only_once() -> None:
    pending = fetch(filings=(filing(cancellation=TODAY + timedelta(days=3)),))
    four_days_on = fetch(
        at=NOW + timedelta(days=4), filings=(filing(cancellation=TODAY + timedelta(days=3)),)
    )
    ((kind, subject, was, now),) = changes(pending, four_days_on)
    assert (kind, subject) == ("insurance_cancelled", "bipd_gpc_77120")
    assert was == now  # the filing did not change: its date was reached
    held = held_after(pending)
    p = plan(held, four_days_on, seen(four_days_on))
    assert len(p.update) == 1
    assert isinstance(p.update[0], Filing)
    assert p.update[0].cancelled
    stored = replace(held, filings=(p.update[0],))
    assert plan(stored, four_days_on, seen(four_days_on)).is_empty


def test_insurance_cancelled_with_a_past_date_at_once_and_for_a_filing_gone_after_its_date() -> None:
    past = TODAY - timedelta(days=2)
    assert [
        c[0]
        for c in changes(
            fetch(),
            fetch(filings=(filing(cancellation=past), filing("CRG-1", kind="CARGO", coverage=100_000))),
        )
    ] == ["insurance_cancelled"]
    pending = fetch(filings=(filing(cancellation=TODAY + timedelta(days=1)),))
    gone = fetch(at=NOW + timedelta(days=2), filings=())
    assert changes(pending, gone) == [
        (
            "insurance_cancelled",
            "bipd_gpc_77120",
            filing(cancellation=TODAY + timedelta(days=1)).as_json(),
            None,
        )
    ]
    # gone before its date, or without one: aged out, no change
    assert changes(pending, fetch(filings=())) == []
    assert changes(fetch(), fetch(filings=())) == []


def test_insurance_below_required_when_bipd_goes_below() -> None:
    assert changes(fetch(bipd_on_file=750_000), fetch(bipd_on_file=500_000)) == [
        (
            "insurance_below_required",
            "bipd",
            {"on_file": 750_000, "required": 750_000},
            {"on_file": 500_000, "required": 750_000},
        )
    ]
    assert changes(fetch(bipd_on_file=500_000), fetch(bipd_on_file=400_000)) == []  # already below
    assert changes(fetch(), fetch(bipd_required=5_000_000)) == [
        (
            "insurance_below_required",
            "bipd",
            {"on_file": 1_000_000, "required": 750_000},
            {"on_file": 1_000_000, "required": 5_000_000},
        )
    ]


def test_every_kind_of_the_source_is_planned_somewhere_and_events_are_well_formed() -> None:
    before = fetch(
        filings=(filing(), filing("C", kind="CARGO", cancellation=TODAY + timedelta(days=1))), oos_order=ORDER
    )
    after = fetch(
        at=NOW + timedelta(days=2),
        common=AuthorityStatus.PENDING_REVOCATION,
        broker=AuthorityStatus.ACTIVE,
        dockets=("MC1034412", "FF7890"),
        bipd_on_file=500_000,
        filings=(filing(cancellation=TODAY + timedelta(days=30)), filing("N", kind="BOND")),
    )
    p = plan(held_after(before), after, seen(after))
    kinds = {c.kind for c in p.changes}
    assert kinds == set(CHANGE_KINDS_BY_SOURCE[SourceKey.AUTHORITY]) - {ChangeKind.OOS_ORDER_ISSUED}
    assert {(c.kind, c.subject) for c in p.changes} == {
        (ChangeKind.AUTHORITY_REVOCATION_PENDING, "common"),
        (ChangeKind.AUTHORITY_STATUS_CHANGED, "broker"),
        (ChangeKind.DOCKET_ADDED, "ff7890"),
        (ChangeKind.OOS_ORDER_LIFTED, "oos_order"),
        (ChangeKind.INSURANCE_CANCELLATION_PENDING, "bipd_gpc_77120"),
        (ChangeKind.INSURANCE_FILING_ADDED, "bond_n"),
        (ChangeKind.INSURANCE_CANCELLED, "cargo_c"),
        (ChangeKind.INSURANCE_BELOW_REQUIRED, "bipd"),
    }
    assert all(c.source is SourceKey.AUTHORITY and c.dot == DOT for c in p.changes)
    assert (p.counts.fetched, p.counts.inserted, p.counts.updated, p.counts.unchanged) == (5, 2, 2, 1)
    assert [type(r).__name__ for r in p.age_out] == ["Filing"]


def test_a_long_policy_number_makes_a_subject_of_at_most_80_safe_characters() -> None:
    long = filing("Ä/" * 60)
    assert len(long.subject) == 80
    assert set(long.subject) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
    (change,) = plan(held_after(fetch(filings=())), fetch(filings=(long,)), seen(fetch())).changes
    assert change.subject == long.subject
