"""What the alert routes talk to, built once by the gateway's worker after its ports: the rule events on
the bus, the notifier's deliveries (read-only), the secret box and the address allow-list.

- The rules in force are read from the stream itself: per name, the last `alert_rule_changed` or
  `alert_rule_removed` message (direct last-by-subject gets), so a PUT is visible to the next GET.
- Secrets are sealed here with `FMCSA_WEBHOOK_SECRET_KEY` before anything is published; the gateway
  never stores, logs or answers a plaintext secret.
- URLs are checked here (http/https, and what the host resolves to, against the allow-list) and again
  by the notifier before every attempt.
- Past changes for a backtest are read (`fmcsa_events.reader.read_stream`) from the first message stored
  at or after `since` (a change is published after it is observed), up to the stream's end when asked.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from litestar.datastructures import State
from litestar.di import NamedDependency
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from fmcsa_alerts.addresses import AllowList, UrlRefused, parse_allow_list
from fmcsa_alerts.deliveries import DeliveriesView
from fmcsa_alerts.payload import destination_id
from fmcsa_alerts.resolve import refusal_for
from fmcsa_alerts.rules import PastChange
from fmcsa_alerts.sealing import SealingUnavailable, SecretBox
from fmcsa_alerts.urls import check_url
from fmcsa_events.bus import Bus
from fmcsa_events.decoder import Decoded, decode
from fmcsa_events.models import AlertRuleChanged, AlertRuleRemoved, CarrierDataChanged
from fmcsa_events.reader import read_stream
from fmcsa_events.subjects import EVENTS_PREFIX, alert_rule_changed, alert_rule_removed
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_gateway.alert_schemas import AlertRule, DestinationOut
from fmcsa_gateway.ports import Ports
from fmcsa_runtime.redaction import register_secret

log = structlog.get_logger(__name__)

BACKTEST_MAX_CHANGES = 200_000
"""A backtest reads at most this many changes (a bound on one request's work)."""


@dataclass(frozen=True, slots=True)
class RuleInForce:
    event: AlertRuleChanged
    seq: int
    changed_at: datetime


class Alerts:
    def __init__(
        self,
        js: JetStreamContext,
        bus: Bus,
        deliveries: DeliveriesView,
        *,
        box: SecretBox | None,
        allow: AllowList,
        clock: Callable[[], datetime],
    ) -> None:
        self.js = js
        self.bus = bus
        self.deliveries = deliveries
        self.box = box
        self.allow = allow
        self.clock = clock

    async def close(self) -> None:
        await self.deliveries.close()

    def seal(self, secret: str) -> str:
        if self.box is None:
            raise SealingUnavailable("FMCSA_WEBHOOK_SECRET_KEY is not set: secrets cannot be stored")
        return self.box.seal(secret)

    async def url_refusal(self, url: str) -> str | None:
        """None when the URL may be used; else why not (scheme, host, or a refused address)."""
        target = check_url(url)
        if isinstance(target, UrlRefused):
            return target.reason
        return await refusal_for(target, self.allow)

    async def rule(self, name: str) -> RuleInForce | None:
        changed = await self._last(alert_rule_changed(name))
        removed = await self._last(alert_rule_removed(name))
        if changed is None or (removed is not None and removed[0] > changed[0]):
            return None
        seq, decoded = changed
        if not isinstance(decoded.event, AlertRuleChanged):
            return None
        return RuleInForce(decoded.event, seq, decoded.envelope.occurred_at)

    async def rules(self, *, limit: int, after: str | None = None) -> tuple[list[RuleInForce], str | None]:
        """One page of the rules in force, by name: at most `limit` rules named after `after`, and the
        cursor of the next page (the last name given) or None at the end.

        The names come from the stream's subject counts (one string per name ever changed); only a
        page's names are looked up (two direct gets each, at most `limit` at once), so a page costs
        the same with 10 rules or 10,000. A removed rule is skipped, so a page may hold fewer.
        """
        try:
            info = await self.js.stream_info(
                EVENTS_STREAM, subjects_filter=f"{EVENTS_PREFIX}.{AlertRuleChanged.TYPE}.>"
            )
        except NotFoundError:
            return [], None
        names = sorted(subject.rsplit(".", 1)[1] for subject in (info.state.subjects or {}))
        start = bisect_right(names, after) if after is not None else 0
        page = names[start : start + limit]
        found = await asyncio.gather(*(self.rule(name) for name in page))
        more = start + limit < len(names)
        return [rule for rule in found if rule is not None], (page[-1] if more and page else None)

    async def _last(self, subject: str) -> tuple[int, Decoded] | None:
        try:
            message = await self.js.get_last_msg(EVENTS_STREAM, subject)
        except NotFoundError:
            return None
        decoded = decode(message.headers, message.data or b"")
        if not isinstance(decoded, Decoded) or not isinstance(
            decoded.event, AlertRuleChanged | AlertRuleRemoved
        ):
            log.warning("alert_rule_undecodable", subject=subject, seq=message.seq)
            return None
        return int(message.seq or 0), decoded

    async def past_changes(self, *, since: datetime) -> list[PastChange]:
        """Every `CarrierDataChanged` stored at or after `since`, up to the stream's end at call time
        (at most `BACKTEST_MAX_CHANGES`).
        """
        found: list[PastChange] = []
        subject = f"{EVENTS_PREFIX}.{CarrierDataChanged.TYPE}.>"
        async for item in read_stream(self.js, subject=subject, start_time=since, idle_timeout_s=2.0):
            decoded = item.decoded
            if isinstance(decoded, Decoded) and isinstance(decoded.event, CarrierDataChanged):
                found.append(PastChange(item.seq, decoded.envelope.event_id, decoded.event))
            if len(found) >= BACKTEST_MAX_CHANGES:
                break
        return found


def rule_out(rule: RuleInForce) -> AlertRule:
    event = rule.event
    return AlertRule(
        name=event.name,
        kinds=list(event.kinds),
        dots=list(event.dots) if event.dots is not None else None,
        conditions=event.conditions,
        destinations=[DestinationOut(id=destination_id(d.url), url=d.url) for d in event.destinations],
        enabled=event.enabled,
        changed_by=event.changed_by,
        changed_at=rule.changed_at,
        seq=rule.seq,
    )


def open_alerts(ports: Ports, *, secret_key: str | None, allow_hosts: str, deliveries_url: str) -> Alerts:
    """The alert routes' `Alerts` over the ports' bus, with the notifier's deliveries opened read-only
    (`Alerts.close` closes them); the secret key's parts are registered for redaction.
    """
    for part in (secret_key or "").split(","):
        register_secret(part.strip())
    box: SecretBox | None = None
    if secret_key:
        box = SecretBox(secret_key)
    else:
        log.warning("webhook_secret_key_missing", effect="PUT /api/alert-rules answers 503")
    return Alerts(
        ports.js,
        Bus(ports.js, producer="gateway", clock=ports.clock),
        DeliveriesView(deliveries_url),
        box=box,
        allow=parse_allow_list(allow_hosts),
        clock=ports.clock,
    )


def provide_alerts(state: State) -> Alerts:
    alerts: Any = getattr(state, "alerts", None)
    if not isinstance(alerts, Alerts):
        raise RuntimeError("the gateway is not started: its worker has not run")
    return alerts


AlertsDep = NamedDependency[Alerts]
