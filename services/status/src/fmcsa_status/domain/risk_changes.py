"""Risk changes: which moves of a carrier's risk light a batch makes, as `CarrierDataChanged` facts of
kind `risk_changed`. Pure: no I/O, no clock.

A batch moves a carrier's light when `settle` derives its record again (a source's newest success
changed) and the light it had before the batch (its record from the loaded rows) differs from the
light after. One fact per carrier and batch:

- `subject` is the light after (`red`, `yellow`, `green`, `unknown`), so an alert rule's `subjects`
  condition says "turned red"; `before` and `after` are `{light, reasons}` (the reasons as the record
  holds them: code, light, text);
- `source`, `request_id`, `observed_at` and `upstream_as_of` are those of the success that moved it:
  of the successes the batch made newest for that carrier, the newest request (requested at, then
  request id). Its event id is `change:<request_id>:risk_changed:<light>`, so re-folding the same batch
  (a crash before the commit) makes the same fact;
- a carrier with no record before the batch, or whose light was `unknown` (no fact the light reads),
  gets none: the first light is a baseline, as a source's first fetch is; so does a move in a batch that
  holds some source's first success for the carrier (a registration's first round of syncs completes the
  record source by source: what that source says is new knowledge, not a change);
- only the light counts: a red carrier that gains a second reason stays red and makes no fact.

A light that moves and comes back within one batch makes none (the projector folds live events in
small batches, so this needs two light-moving successes of one carrier within `batch_wait_ms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from fmcsa_events.identifiers import SourceKey
from fmcsa_events.models import CarrierDataChanged, ChangeKind
from fmcsa_status.domain.state import Pair, RequestKey, utc
from fmcsa_status_view.record import carrier_record
from fmcsa_status_view.rows import CarrierRow

PairKey = tuple[str, SourceKey]

UNKNOWN = "unknown"


def risk_changes(
    loaded: Mapping[PairKey, Pair], pairs: Mapping[PairKey, Pair], carriers: Mapping[str, CarrierRow]
) -> list[CarrierDataChanged]:
    """The risk changes of a settled batch: `loaded` the pairs before it, `pairs` the pairs it changed
    and `carriers` the records it derived again (`Settled.pairs`, `Settled.carriers`); in DOT order.
    """
    changes: list[CarrierDataChanged] = []
    for dot in sorted(carriers, key=int):
        after = carriers[dot]
        before = carrier_record(dot, {s: p for s in SourceKey if (p := loaded.get((dot, s))) is not None})
        if _first_success(dot, loaded, pairs):
            continue  # a baseline (module docstring)
        mover = _mover(dot, loaded, pairs)
        change = risk_change(before, after, mover)
        if change is not None:
            changes.append(change)
    return changes


def risk_change(
    before: CarrierRow | None, after: CarrierRow, mover: Pair | None
) -> CarrierDataChanged | None:
    """The fact for one carrier whose record went from `before` to `after`, moved by the success of
    `mover`; None when the light did not move or `before` is a baseline (see the module docstring).
    """
    if before is None or before.risk == UNKNOWN or before.risk == after.risk or mover is None:
        return None
    request_id, finished = mover.success_request_id, mover.last_success_at
    if request_id is None or finished is None:
        return None
    return CarrierDataChanged(
        request_id=UUID(request_id),
        dot=after.dot,
        source=mover.source,
        kind=ChangeKind.RISK_CHANGED,
        subject=after.risk,
        before=_side(before),
        after=_side(after),
        upstream_as_of=mover.upstream_as_of,
        observed_at=utc(finished),
    )


def _side(record: CarrierRow) -> dict[str, object]:
    return {"light": record.risk, "reasons": list(record.risk_reasons or [])}


def _mover(dot: str, loaded: Mapping[PairKey, Pair], pairs: Mapping[PairKey, Pair]) -> Pair | None:
    """Of the carrier's pairs whose newest success the batch changed, the one of the newest request."""
    best: tuple[RequestKey, Pair] | None = None
    for source in SourceKey:
        pair = pairs.get((dot, source))
        if pair is None or pair.success_key is None:
            continue
        held = loaded.get((dot, source))
        if held is not None and held.success_request_id == pair.success_request_id:
            continue
        if best is None or pair.success_key > best[0]:
            best = (pair.success_key, pair)
    return best[1] if best is not None else None


def _first_success(dot: str, loaded: Mapping[PairKey, Pair], pairs: Mapping[PairKey, Pair]) -> bool:
    """Some source succeeded for the carrier in this batch for the first time."""
    for source in SourceKey:
        pair = pairs.get((dot, source))
        if pair is None or pair.success_request_id is None:
            continue
        held = loaded.get((dot, source))
        if held is None or held.success_request_id is None:
            return True
    return False
