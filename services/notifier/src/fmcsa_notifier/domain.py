"""The notifier's decisions, pure: which deliveries a change makes, and what to do with a message.

A change fires each rule in force just before its stream position (`fmcsa_alerts.rules.in_effect`)
that `matches` it; each firing makes one delivery per destination of the rule, with the id and body
that every attempt, resend and duplicate reuse. A message is acked when none of its deliveries is
pending any more, else handed back with a delay until the earliest one is due.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fmcsa_alerts.payload import delivery_id, destination_id, webhook_body
from fmcsa_alerts.rules import RuleEvent, in_effect, matches
from fmcsa_events.models import CarrierDataChanged


@dataclass(frozen=True, slots=True)
class Planned:
    id: str
    rule: str
    url: str
    destination_id: str
    sealed_secret: str
    body: bytes


def plan(
    change: CarrierDataChanged,
    *,
    event_id: str,
    seq: int,
    history: Iterable[tuple[int, RuleEvent]],
    api_url: str,
) -> list[Planned]:
    """One delivery per (rule that fires, destination), in rule-name order."""
    planned: list[Planned] = []
    for name, rule in sorted(in_effect(history, before_seq=seq).items()):
        if not matches(rule, change):
            continue
        for destination in rule.destinations:
            ident = delivery_id(event_id, name, destination.url)
            planned.append(
                Planned(
                    id=ident,
                    rule=name,
                    url=destination.url,
                    destination_id=destination_id(destination.url),
                    sealed_secret=destination.sealed_secret,
                    body=webhook_body(
                        delivery=ident, change_event_id=event_id, change=change, rule=name, api_url=api_url
                    ),
                )
            )
    return planned


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class NakFor:
    delay_s: float


def fate(pending_due: Sequence[datetime], *, now: datetime) -> Ack | NakFor:
    """Ack when nothing is pending; else come back when the earliest pending delivery is due."""
    if not pending_due:
        return Ack()
    return NakFor(max(0.0, (min(pending_due) - now).total_seconds()))


def due(next_attempt_at: datetime | None, *, now: datetime) -> bool:
    """A pending delivery is attempted once its time has come (a few ms early counts: a nak's delay
    is not exact).
    """
    return next_attempt_at is None or (next_attempt_at - now).total_seconds() <= 0.05
