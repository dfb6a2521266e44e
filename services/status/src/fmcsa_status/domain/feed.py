"""The change feed and the history series: what the fold keeps of `CarrierDataChanged` facts and of
each `SourceSynced` summary. Pure: no I/O, no clock.

History series, per source (the subject, then the values of each point; a value the summary
withholds or does not carry is None, never 0):

| source | subject | values |
|---|---|---|
| csa | each BASIC, as its change facts name it (`unsafe_driving`, `basic_<id>`) | `percentile`, `measure` |
| violations | `violations` | `total`, `oos`, `inspections` (rows in the 24-month window) |
| inspections | `us_vehicle`, `us_driver` | `oos_rate` (percent), `inspections`, `out_of_service` |
| inspections | `us_crashes` | `total`, `fatal`, `injury`, `tow` |
| authority | `insurance` | `bipd_on_file`, `bipd_required` (whole US dollars) |

A point is keyed by (DOT, source, subject, upstream as-of); an outcome without an upstream as-of
adds no point (it cannot be placed on the time axis honestly). A summary that is not of the
expected shape adds what it can and never raises: it comes from another service.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fmcsa_events.envelope import event_id as derived_event_id
from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, SourceSynced
from fmcsa_status.domain.state import Change, Point, utc

BASIC_SUBJECTS: Mapping[int, str] = {
    11: "unsafe_driving",
    12: "hos_compliance",
    13: "driver_fitness",
    14: "controlled_substances_alcohol",
    15: "vehicle_maintenance",
}
"""A BASIC's subject by QCMobile `basicsId`, as the csa source names it in its change facts
(`fmcsa_source_csa.domain.changes.BASIC_SUBJECTS`; services never import each other, so it is repeated
here and a test pins it); an id not listed is `basic_<id>`."""


def basic_subject(basics_id: int) -> str:
    return BASIC_SUBJECTS.get(basics_id, f"basic_{basics_id}")


def change_of(event: CarrierDataChanged, position: int) -> Change:
    """The feed row of one change fact, folded at stream sequence `position`."""
    return Change(
        position=position,
        event_id=derived_event_id(event),
        request_id=str(event.request_id),
        dot=event.dot,
        source=event.source,
        kind=event.kind.value,
        subject=event.subject,
        before=event.before,
        after=event.after,
        upstream_as_of=utc(event.upstream_as_of) if event.upstream_as_of is not None else None,
        observed_at=utc(event.observed_at),
    )


def history_points(outcome: SourceSynced) -> list[Point]:
    """The history points one success adds (see the module docstring); none without an as-of."""
    if outcome.upstream_as_of is None:
        return []
    as_of = utc(outcome.upstream_as_of)
    observed = utc(outcome.retrieved_at or outcome.finished_at)
    summary: Mapping[str, Any] = outcome.summary
    match outcome.source:
        case SourceKey.CSA:
            series = _csa_series(summary)
        case SourceKey.VIOLATIONS:
            series = _violations_series(summary)
        case SourceKey.INSPECTIONS:
            series = _inspections_series(summary)
        case SourceKey.AUTHORITY:
            series = _authority_series(summary)
    request_id = str(outcome.request_id)
    return [
        Point(outcome.dot, outcome.source, subject, as_of, figures, request_id, observed)
        for subject, figures in series.items()
    ]


def newer(point: Point, than: Point | None) -> bool:
    """Whether `point` replaces `than` at their key: the newest observation of an as-of date wins."""
    return than is None or point.order > than.order


def _csa_series(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    series: dict[str, dict[str, float | None]] = {}
    basics = summary.get("basics")
    for basic in basics if isinstance(basics, list) else ():
        if not isinstance(basic, dict):
            continue
        basics_id = basic.get("id")
        if isinstance(basics_id, int) and not isinstance(basics_id, bool):
            series[basic_subject(basics_id)] = {
                "percentile": _number(basic.get("percentile")),
                "measure": _number(basic.get("measure")),
            }
    return series


def _violations_series(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    names = ("total", "oos", "inspections")
    if not any(name in summary for name in names):
        return {}
    return {"violations": {name: _number(summary.get(name)) for name in names}}


def _inspections_series(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    series: dict[str, dict[str, float | None]] = {}
    us = summary.get("us_inspections")
    for group in ("vehicle", "driver"):
        figures = us.get(group) if isinstance(us, dict) else None
        if isinstance(figures, dict):
            series[f"us_{group}"] = {
                "oos_rate": _number(figures.get("out_of_service_percent")),
                "inspections": _number(figures.get("inspections")),
                "out_of_service": _number(figures.get("out_of_service")),
            }
    crashes = summary.get("us_crashes")
    if isinstance(crashes, dict):
        series["us_crashes"] = {
            name: _number(crashes.get(name)) for name in ("total", "fatal", "injury", "tow")
        }
    return series


def _authority_series(summary: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    insurance = summary.get("insurance")
    if not isinstance(insurance, dict):
        return {}
    return {"insurance": {name: _number(insurance.get(name)) for name in ("bipd_on_file", "bipd_required")}}


def _number(value: Any) -> float | None:
    """A finite number from a JSON number or a decimal string ("72", "5.43"); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
