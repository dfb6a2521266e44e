"""Risk changes (pure, `fmcsa_status.domain.risk_changes`): one fact per move of a carrier's light,
attributed to the success that moved it; the first light is a baseline; reasons alone are no move."""

from __future__ import annotations

from collections.abc import Sequence

from status_support import authority_summary, facts, request, synced

from fmcsa_events.envelope import event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind, Event
from fmcsa_status.domain.fold import Loaded, fold, settle
from fmcsa_status.domain.memory import MemoryProjection
from fmcsa_status.domain.risk_changes import risk_changes

DOT = "2847193"
YELLOW = {
    "basics": [{"id": 11, "name": "Unsafe Driving", "percentile": "72", "alert": True}],
    "alerts": [11],
    "legal_name": "ACME FREIGHT LINES INC",
    "allowed_to_operate": True,
    "safety_rating": "satisfactory",
}
RED = {**YELLOW, "safety_rating": "unsatisfactory"}
GREEN = {**YELLOW, "basics": [{"id": 11, "name": "Unsafe Driving", "percentile": "12"}], "alerts": []}


def step(p: MemoryProjection, events: Sequence[Event]) -> list[CarrierDataChanged]:
    """Fold one batch into `p` and return the risk changes the live store would write for it."""
    batch = facts(events)
    loaded = Loaded(p.entries, dict(p.pairs), p.companies, p.changes)
    settled = settle(loaded, fold(loaded, batch), {})
    changes = risk_changes(loaded.pairs, settled.pairs, settled.carriers)
    p.apply(batch)
    return changes


def test_yellow_to_red_is_one_fact_of_the_success_that_moved_it() -> None:
    p = MemoryProjection()
    first, second = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.CSA, 10)
    assert step(p, [first, synced(first, 1, summary=YELLOW)]) == []  # the first light: a baseline
    [change] = step(p, [second, synced(second, 11, summary=RED)])
    assert change.kind == ChangeKind.RISK_CHANGED
    assert (change.dot, change.source, change.request_id) == (DOT, SourceKey.CSA, second.request_id)
    assert change.subject == "red"
    assert change.before == {
        "light": "yellow",
        "reasons": [{"code": "basic_alert", "light": "yellow", "text": "Unsafe Driving: in alert."}],
    }
    assert isinstance(change.after, dict)
    assert change.after["light"] == "red"
    assert [r["code"] for r in change.after["reasons"]] == ["rating_unsatisfactory", "basic_alert"]  # type: ignore[index,call-overload]
    assert event_id(change) == f"change:{second.request_id}:risk_changed:red"


def test_the_same_light_again_or_other_reasons_of_it_make_no_fact() -> None:
    p = MemoryProjection()
    runs = [request(DOT, SourceKey.CSA, minute) for minute in (0, 10, 20)]
    step(p, [runs[0], synced(runs[0], 1, summary=RED)])
    assert step(p, [runs[1], synced(runs[1], 11, summary=RED)]) == []
    # red from the rating and now also from insurance: still red
    authority = request(DOT, SourceKey.AUTHORITY, 15)
    assert step(p, [authority, synced(authority, 16, summary=authority_summary(500_000))]) == []
    assert p.carriers[DOT].risk == "red"


def test_a_light_from_unknown_is_a_baseline_and_back_to_green_is_a_fact() -> None:
    p = MemoryProjection()
    violations = request(DOT, SourceKey.VIOLATIONS, 0)
    step(p, [violations, synced(violations, 1, summary={"rows": [], "rows_complete": True})])
    assert p.carriers[DOT].risk == "unknown"
    csa, again = request(DOT, SourceKey.CSA, 10), request(DOT, SourceKey.CSA, 20)
    assert step(p, [csa, synced(csa, 11, summary=YELLOW)]) == []
    [change] = step(p, [again, synced(again, 21, summary=GREEN)])
    assert (change.subject, change.before["light"], change.after) == (
        "green",
        "yellow",
        {"light": "green", "reasons": []},
    )  # type: ignore[index,call-overload]


def test_an_older_success_arriving_late_moves_nothing() -> None:
    p = MemoryProjection()
    old, new = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.CSA, 10)
    step(p, [old, new, synced(new, 11, summary=YELLOW)])
    assert step(p, [synced(old, 30, summary=RED)]) == []  # not the newest success: the record stays
    assert p.carriers[DOT].risk == "yellow"


def test_a_sources_first_success_is_a_baseline_even_when_it_moves_the_light() -> None:
    """A registration's first round completes the record source by source: no alert for that."""
    p = MemoryProjection()
    csa = request(DOT, SourceKey.CSA, 0)
    step(p, [csa, synced(csa, 1, summary=GREEN)])
    authority, again = request(DOT, SourceKey.AUTHORITY, 5), request(DOT, SourceKey.AUTHORITY, 30)
    assert step(p, [authority, synced(authority, 6, summary=authority_summary(500_000))]) == []
    assert p.carriers[DOT].risk == "red"
    [change] = step(p, [again, synced(again, 31, summary=authority_summary(1_000_000))])
    assert (change.source, change.subject, change.before["light"]) == (SourceKey.AUTHORITY, "green", "red")  # type: ignore[index,call-overload]


def test_two_sources_in_one_batch_name_the_newest_request() -> None:
    p = MemoryProjection()
    first, held = request(DOT, SourceKey.CSA, 0), request(DOT, SourceKey.AUTHORITY, 1)
    step(
        p,
        [first, held, synced(first, 1, summary=GREEN), synced(held, 2, summary=authority_summary(1_000_000))],
    )
    csa, authority = request(DOT, SourceKey.CSA, 10), request(DOT, SourceKey.AUTHORITY, 12)
    [change] = step(
        p,
        [
            csa,
            authority,
            synced(authority, 13, summary=authority_summary(500_000)),
            synced(csa, 14, summary=YELLOW),
        ],
    )
    assert (change.source, change.request_id, change.subject) == (
        SourceKey.AUTHORITY,
        authority.request_id,
        "red",
    )
