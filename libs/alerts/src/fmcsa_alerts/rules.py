"""Which changes an alert rule fires on: a pure function of (rule, change), and the backtest built on it.

The live notifier and `POST /api/alert-rules/{name}/backtest` both call `matches`, so a backtest over a
period in which the rule did not change equals what the notifier fired over it. A rule fires when it is
enabled, the change's kind is one of its kinds, its company is in the rule's list (or the rule has none),
and every condition it sets is met (see `AlertConditions`). Values are compared exactly: the change's
percentile or percent as a `Decimal` (never a float), the rule's limit as the number its author wrote.
Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from pydantic import JsonValue

from fmcsa_events import decimals
from fmcsa_events.models import AlertRuleChanged, AlertRuleRemoved, CarrierDataChanged

VALUE_KEYS = ("percentile", "percent")
"""Where a change's number lives in its `before` / `after`: a BASIC's percentile, an OOS rate's percent."""


def change_value(side: JsonValue) -> Decimal | None:
    """The number one side of a change carries (a percentile or a percent), exactly, or None when it
    has none. Sources write it as decimal text (`"57.25"`, up to 50 decimals); an event written
    before that may hold a JSON number, read as the shortest text of that number (`15.5`).
    """
    if not isinstance(side, dict):
        return None
    for key in VALUE_KEYS:
        raw = side.get(key)
        if isinstance(raw, bool) or raw is None:
            continue
        try:
            if isinstance(raw, int | float):
                return decimals.exact(Decimal(repr(raw)))
            if isinstance(raw, str):
                return decimals.exact(Decimal(raw.strip().rstrip("%")))
        except (InvalidOperation, ValueError):
            return None
    return None


def _limit(value: float) -> Decimal:
    """A rule's limit as the number its author wrote (`58.5`, not the float's binary expansion)."""
    return Decimal(repr(value))


def matches(rule: AlertRuleChanged, change: CarrierDataChanged) -> bool:
    """True when `rule` fires on `change`; see the module docstring."""
    if not rule.enabled or change.kind not in rule.kinds:
        return False
    if rule.dots is not None and change.dot not in rule.dots:
        return False
    conditions = rule.conditions
    if conditions.subjects is not None and change.subject not in conditions.subjects:
        return False
    after = change_value(change.after)
    if conditions.percentile_at_least is not None and (
        after is None or after < _limit(conditions.percentile_at_least)
    ):
        return False
    if conditions.delta_at_least is not None:
        before = change_value(change.before)
        if (
            before is None
            or after is None
            or decimals.difference(after, before).copy_abs() < _limit(conditions.delta_at_least)
        ):
            return False
    return True


RuleEvent = AlertRuleChanged | AlertRuleRemoved


def in_effect(history: Iterable[tuple[int, RuleEvent]], *, before_seq: int) -> dict[str, AlertRuleChanged]:
    """The rules in force just before stream sequence `before_seq`, by name, from their events.

    `history` holds (stream sequence, event) in any order; the latest event per name before the
    sequence wins, and a removal leaves no rule.
    """
    latest: dict[str, tuple[int, RuleEvent]] = {}
    for seq, event in history:
        if seq >= before_seq:
            continue
        held = latest.get(event.name)
        if held is None or held[0] < seq:
            latest[event.name] = (seq, event)
    return {name: event for name, (_, event) in latest.items() if isinstance(event, AlertRuleChanged)}


@dataclass(frozen=True, slots=True)
class PastChange:
    """A change as read back from the stream: its sequence and event id travel with it."""

    seq: int
    event_id: str
    change: CarrierDataChanged


@dataclass(frozen=True, slots=True)
class Firing:
    """One change a rule fired (or would fire) on."""

    event_id: str
    seq: int
    change: CarrierDataChanged


def backtest(
    rule: AlertRuleChanged, past: Iterable[PastChange], *, since: datetime, until: datetime | None
) -> list[Firing]:
    """What `rule` fires on among `past` changes observed in `[since, until)`, each event id once,
    in stream order. Sends nothing, stores nothing.
    """
    seen: set[str] = set()
    fired: list[Firing] = []
    for item in sorted(past, key=lambda p: p.seq):
        observed = item.change.observed_at
        if observed < since or (until is not None and observed >= until) or item.event_id in seen:
            continue
        seen.add(item.event_id)
        if matches(rule, item.change):
            fired.append(Firing(item.event_id, item.seq, item.change))
    return fired


def firing_ids(firings: Sequence[Firing]) -> set[str]:
    return {f.event_id for f in firings}
