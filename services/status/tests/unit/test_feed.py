"""The change feed and the history series in the pure fold: each test names one rule."""

from __future__ import annotations

from datetime import UTC, datetime

from status_support import authority_summary, changed, csa_summary, fold_all, request, synced, timed

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import ChangeKind
from fmcsa_status.domain.feed import BASIC_SUBJECTS, history_points
from fmcsa_status.domain.fold import Loaded, fold
from fmcsa_status.domain.memory import MemoryProjection

CSA, VIO, INS, AUTH = SourceKey.CSA, SourceKey.VIOLATIONS, SourceKey.INSPECTIONS, SourceKey.AUTHORITY
DOT = "2847193"
SEPT, OCT = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)


def test_a_change_is_folded_once_with_its_values_and_position() -> None:
    req = request(DOT, CSA, 0)
    fact = changed(req, 1, kind=ChangeKind.BASIC_ALERT_STARTED, before=False, after=True)
    p = fold_all([timed(fact, position=7).fact, timed(synced(req, 2)).fact])
    assert list(p.changes) == [f"change:{req.request_id}:basic_alert_started:unsafe_driving"]
    row = p.changes[f"change:{req.request_id}:basic_alert_started:unsafe_driving"]
    assert (row.position, row.dot, row.source, row.kind, row.subject) == (
        7,
        DOT,
        CSA,
        "basic_alert_started",
        "unsafe_driving",
    )
    assert (row.before, row.after, row.request_id) == (False, True, str(req.request_id))
    assert row.observed_at == fact.observed_at
    assert row.upstream_as_of == OCT


def test_a_duplicate_change_changes_nothing_in_one_batch_or_the_next() -> None:
    req = request(DOT, CSA, 0)
    first = timed(changed(req, 1), position=5)
    again = timed(changed(req, 1), eid="republished-under-another-message-id", position=9)
    p = fold_all([first.fact, again.fact])
    assert [c.position for c in p.changes.values()] == [5]
    later = p.apply([again.fact])  # a republish beyond the duplicate window, in a later batch
    assert not later.changes
    assert [c.position for c in p.changes.values()] == [5]


def test_a_change_folded_out_of_order_keeps_its_lowest_position() -> None:
    req = request(DOT, CSA, 0)
    early, late = timed(changed(req, 1), position=5), timed(changed(req, 1), position=9)
    p = fold_all([late.fact])
    folded = p.apply([early.fact])
    assert folded.dropped_changes == frozenset({9})  # the store deletes the row it replaces
    assert [c.position for c in p.changes.values()] == [5]
    assert p.changes == fold_all([early.fact, late.fact]).changes


def test_each_success_adds_a_point_per_basic_and_as_of() -> None:
    first, second = request(DOT, CSA, 0), request(DOT, CSA, 10)
    p = fold_all(
        [
            timed(first).fact,
            timed(synced(first, 1, summary=csa_summary("71", "5.43"), as_of=SEPT)).fact,
            timed(second).fact,
            timed(synced(second, 11, summary=csa_summary(None, None), as_of=OCT)).fact,
        ]
    )
    points = {(k[2], k[3]): v.figures for k, v in p.history.items()}
    assert points == {
        ("unsafe_driving", SEPT): {"percentile": 71.0, "measure": 5.43},
        ("basic_99", SEPT): {"percentile": None, "measure": None},  # Not Public: None, never 0
        ("unsafe_driving", OCT): {"percentile": None, "measure": None},
        ("basic_99", OCT): {"percentile": None, "measure": None},
    }


def test_a_repeated_as_of_overwrites_with_the_newest_observation_in_any_order() -> None:
    first, second = request(DOT, CSA, 0), request(DOT, CSA, 10)
    older = synced(first, 1, summary=csa_summary("40"), as_of=OCT)
    newer = synced(second, 11, summary=csa_summary("72"), as_of=OCT)
    facts = [timed(e).fact for e in (first, older, second, newer)]
    for order in (facts, facts[::-1]):
        p = fold_all(order)
        point = p.history[(DOT, CSA, "unsafe_driving", OCT)]
        assert point.figures["percentile"] == 72.0
        assert point.request_id == str(second.request_id)
        assert len(p.history) == 2  # one point per BASIC: overwritten, not duplicated
    late = MemoryProjection()
    late.apply(facts[2:])
    late.apply(facts[:2])  # the older observation, folded in a later batch, does not overwrite
    assert late.history[(DOT, CSA, "unsafe_driving", OCT)].figures["percentile"] == 72.0


def test_a_duplicate_outcome_adds_no_point_and_a_fold_without_outcomes_none() -> None:
    req = request(DOT, CSA, 0)
    success = timed(synced(req, 1, summary=csa_summary("71"), as_of=OCT)).fact
    p = fold_all([timed(req).fact, success])
    assert not p.apply([success]).history
    assert not fold(Loaded({}, {}, {}), [timed(req).fact]).history


def test_violations_and_inspections_summaries_give_their_series() -> None:
    vio, ins = request(DOT, VIO, 0), request(DOT, INS, 0)
    violations = {"total": 12, "oos": 2, "inspections": 7, "per_basic": {"unsafe_driving": 3}}
    figures = {
        "inspections": 10,
        "out_of_service": 3,
        "out_of_service_percent": "30",
        "national_average": "21.4",
    }
    inspections = {
        "operating_status": "AUTHORIZED",
        "us_inspections": {"vehicle": figures, "driver": None, "hazmat": None, "iep": None},
        "us_crashes": {"fatal": 0, "injury": 1, "tow": 2, "total": 3},
    }
    points = {
        (q.source, q.subject): q.figures
        for q in history_points(synced(vio, 1, summary=violations, as_of=OCT))
        + history_points(synced(ins, 1, summary=inspections, as_of=OCT))
    }
    assert points == {
        (VIO, "violations"): {"total": 12.0, "oos": 2.0, "inspections": 7.0},
        (INS, "us_vehicle"): {"oos_rate": 30.0, "inspections": 10.0, "out_of_service": 3.0},
        (INS, "us_crashes"): {"total": 3.0, "fatal": 0.0, "injury": 1.0, "tow": 2.0},
    }


def test_an_authority_summary_gives_the_insurance_series_in_dollars_unknown_as_none() -> None:
    req = request(DOT, AUTH, 0)
    points = history_points(synced(req, 1, summary=authority_summary(1_000_000), as_of=OCT))
    assert [(q.source, q.subject, q.figures) for q in points] == [
        (AUTH, "insurance", {"bipd_on_file": 1_000_000.0, "bipd_required": 750_000.0})
    ]
    unknown = history_points(synced(req, 1, summary=authority_summary(None, None), as_of=OCT))
    assert [q.figures for q in unknown] == [{"bipd_on_file": None, "bipd_required": None}]
    for odd in ({"insurance": None}, {"insurance": [1]}, {}, {"authority": {"common": "active"}}):
        assert history_points(synced(req, 1, summary=odd, as_of=OCT)) == []
    strange = {"insurance": {"bipd_on_file": "lots", "bipd_required": True}}
    assert [q.figures for q in history_points(synced(req, 1, summary=strange, as_of=OCT))] == [
        {"bipd_on_file": None, "bipd_required": None}
    ]


def test_no_as_of_or_an_odd_summary_gives_no_point_and_never_raises() -> None:
    req = request(DOT, CSA, 0)
    no_as_of = synced(req, 1, summary=csa_summary("71")).model_copy(update={"upstream_as_of": None})
    assert history_points(no_as_of) == []
    odd = {
        "basics": [None, "x", {"id": True}, {"id": 12, "percentile": "NaN", "measure": [1]}],
        "total": "many",
    }
    assert [(q.subject, q.figures) for q in history_points(synced(req, 1, summary=odd, as_of=OCT))] == [
        ("hos_compliance", {"percentile": None, "measure": None})
    ]
    assert history_points(synced(request(DOT, VIO, 0), 1, summary={"basics": "no"}, as_of=OCT)) == []


def test_basic_subjects_are_the_csa_sources_names() -> None:
    # fmcsa_source_csa.domain.changes.BASIC_SUBJECTS: the feed and the history must name a BASIC alike
    assert BASIC_SUBJECTS == {
        11: "unsafe_driving",
        12: "hos_compliance",
        13: "driver_fitness",
        14: "controlled_substances_alcohol",
        15: "vehicle_maintenance",
    }
