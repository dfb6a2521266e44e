"""Alert rules, their backtests, webhook deliveries and destinations.

- `GET /api/alert-rules`, `GET /api/alert-rules/{name}`: viewer. `PUT` and `DELETE`: admin; they publish
  `AlertRuleChanged` / `AlertRuleRemoved` (secrets sealed first) and the notifier applies them.
- `POST /api/alert-rules/{name}/backtest`: operator; reads past changes from the stream and runs them
  through the same matcher the notifier uses; sends nothing.
- `GET /api/deliveries` (filters rule, dot, status), `GET /api/deliveries/{id}`: viewer;
  `POST /api/deliveries/{id}/resend`: operator, publishes `WebhookResendRequested`.
- `GET /api/webhook-destinations`: viewer; each destination with its failing state.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from fmcsa_alerts.deliveries import DeliveryStatus
from fmcsa_alerts.rules import backtest
from fmcsa_alerts.sealing import SealingUnavailable
from fmcsa_events.identifiers import DOT_PATTERN, InvalidDotNumber, parse_dot
from fmcsa_events.models import (
    RULE_NAME_PATTERN,
    AlertRuleChanged,
    AlertRuleRemoved,
    WebhookDestination,
    WebhookResendRequested,
)
from fmcsa_gateway.alert_schemas import (
    AlertRule,
    AlertRules,
    Backtest,
    BacktestIn,
    DeliveryOut,
    DeliveryPage,
    DestinationState,
    DestinationStates,
    FiredChange,
    PutAlertRule,
    ResendAccepted,
    delivery_out,
)
from fmcsa_gateway.alerts import Alerts, AlertsDep, rule_out
from fmcsa_gateway.auth import ADMIN, OPERATOR, VIEWER, Caller
from fmcsa_gateway.problems import FieldError, ProblemError, problem_specs
from fmcsa_runtime.redaction import register_secret
from fmcsa_status_view.query import MAX_LIMIT

RuleName = Annotated[
    str,
    PathParameter(
        description="Lower-case letters, digits, _ and -; up to 63.",
        max_length=64,
        schema_extra={"pattern": RULE_NAME_PATTERN},
    ),
]


DELIVERY_ID_PATTERN = r"[0-9a-f]{32}"
DeliveryId = Annotated[
    str,
    PathParameter(max_length=64, description="32 hex digits.", schema_extra={"pattern": "^[0-9a-f]{32}$"}),
]


def checked_name(name: str, *, field: str = "path.name") -> str:
    if re.fullmatch(RULE_NAME_PATTERN, name) is None:
        reason = f"a rule name must match {RULE_NAME_PATTERN}"
        raise ProblemError(422, reason, errors=[FieldError(field=field, reason=reason)])
    return name


async def put_rule(alerts: Alerts, name: str, data: PutAlertRule, caller: Caller) -> AlertRule:
    """Check every destination (URL and address; a secret for a new URL), seal the secrets, publish."""
    name = checked_name(name)
    if alerts.box is None:  # refused before any name is resolved: nothing can be stored without the key
        raise ProblemError(503, "FMCSA_WEBHOOK_SECRET_KEY is not set: webhook secrets cannot be stored")
    current = await alerts.rule(name)
    kept = {d.url: d.sealed_secret for d in current.event.destinations} if current else {}
    destinations: list[WebhookDestination] = []
    errors: list[FieldError] = []
    for n, destination in enumerate(data.destinations):
        if reason := await alerts.url_refusal(destination.url):
            errors.append(FieldError(field=f"body.destinations.{n}.url", reason=reason))
            continue
        if destination.secret is not None:
            register_secret(destination.secret.get_secret_value())  # scrubbed from any later log line
            try:
                sealed = alerts.seal(destination.secret.get_secret_value())
            except SealingUnavailable as error:
                raise ProblemError(503, str(error)) from None
        elif destination.url in kept:
            sealed = kept[destination.url]
        else:
            reason = "a new destination needs its secret"
            errors.append(FieldError(field=f"body.destinations.{n}.secret", reason=reason))
            continue
        destinations.append(WebhookDestination(url=destination.url, sealed_secret=sealed))
    if errors:
        raise ProblemError(422, "; ".join(f"{e.field}: {e.reason}" for e in errors)[:1000], errors=errors)
    event = AlertRuleChanged(
        name=name,
        kinds=tuple(dict.fromkeys(data.kinds)),
        dots=tuple(dict.fromkeys(data.dots)) if data.dots is not None else None,
        conditions=data.conditions,
        destinations=tuple(destinations),
        enabled=data.enabled,
        changed_by=caller.subject,
    )
    await alerts.bus.publish(event)
    found = await alerts.rule(name)
    assert found is not None, "the rule was just published"
    return rule_out(found)


async def run_backtest(alerts: Alerts, name: str, data: BacktestIn) -> Backtest:
    rule = await alerts.rule(checked_name(name))
    if rule is None:
        raise ProblemError(404, f"no alert rule {name}")
    if data.until is not None and data.until <= data.since:
        reason = "until must be after since"
        raise ProblemError(422, reason, errors=[FieldError(field="body.until", reason=reason)])
    past = await alerts.past_changes(since=data.since)
    fired = backtest(rule.event, past, since=data.since, until=data.until)
    live = await alerts.deliveries.change_ids_fired(rule.event.name, since=data.since, until=data.until)
    return Backtest(
        rule=rule.event.name,
        since=data.since,
        until=data.until,
        scanned=len(past),
        fired=[
            FiredChange(
                event_id=f.event_id,
                seq=f.seq,
                dot=f.change.dot,
                source=f.change.source.value,
                kind=f.change.kind,
                subject=f.change.subject,
                observed_at=f.change.observed_at,
                before=f.change.before,
                after=f.change.after,
            )
            for f in fired
        ],
        live_fired=sorted(live),
        equal={f.event_id for f in fired} == live,
    )


async def resend(alerts: Alerts, delivery_id: str, caller: Caller) -> ResendAccepted:
    if (
        re.fullmatch(DELIVERY_ID_PATTERN, delivery_id) is None
        or await alerts.deliveries.get(delivery_id) is None
    ):
        raise ProblemError(404, f"no delivery {delivery_id[:40]}")
    published = await alerts.bus.publish(
        WebhookResendRequested(delivery_id=delivery_id, requested_by=caller.subject)
    )
    return ResendAccepted(delivery_id=delivery_id, event_id=published.envelope.event_id)


class AlertRulesController(Controller):
    path = "/api/alert-rules"
    tags = ("alerts",)

    @get("/", guards=[VIEWER], responses=problem_specs(401, 422))
    async def list_rules(
        self,
        alerts: AlertsDep,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Rules per page.")] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                max_length=64,
                description="`next_cursor` of the previous page (a rule name).",
                schema_extra={"pattern": RULE_NAME_PATTERN},
            ),
        ] = None,
    ) -> AlertRules:
        """The alert rules in force, by name, a page at a time (`limit`, `cursor`); secrets never shown."""
        if cursor is not None:
            checked_name(cursor, field="query.cursor")
        rules, next_cursor = await alerts.rules(limit=limit, after=cursor)
        return AlertRules(limit=limit, next_cursor=next_cursor, items=[rule_out(rule) for rule in rules])

    @get("/{name:str}", guards=[VIEWER], responses=problem_specs(400, 401, 404, 422))
    async def get_rule(self, alerts: AlertsDep, name: RuleName) -> AlertRule:
        """One alert rule, or 404."""
        rule = await alerts.rule(checked_name(name))
        if rule is None:
            raise ProblemError(404, f"no alert rule {name}")
        return rule_out(rule)

    @put("/{name:str}", guards=[ADMIN], responses=problem_specs(400, 401, 403, 413, 422, 503))
    async def put_rule(
        self,
        alerts: AlertsDep,
        name: RuleName,
        data: JSONBody[PutAlertRule],
        request: Request[Caller, Any, Any],
    ) -> AlertRule:
        """Create or replace a rule: change kinds, companies (all when `dots` is null), conditions and
        1-5 webhook destinations. Publishes AlertRuleChanged; the notifier applies it to later changes.

        422 names each refused URL (not http(s), or resolving to a loopback, private or link-local address
        not on FMCSA_WEBHOOK_ALLOW_HOSTS) and each new destination without a secret.
        """
        return await put_rule(alerts, name, data, request.user)

    @delete(
        "/{name:str}",
        guards=[ADMIN],
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_specs(401, 403, 404, 422),
    )
    async def delete_rule(
        self, alerts: AlertsDep, name: RuleName, request: Request[Caller, Any, Any]
    ) -> None:
        """Remove a rule: publishes AlertRuleRemoved; later changes fire nothing for it."""
        if await alerts.rule(checked_name(name)) is None:
            raise ProblemError(404, f"no alert rule {name}")
        await alerts.bus.publish(AlertRuleRemoved(name=name, removed_by=request.user.subject))

    @post(
        "/{name:str}/backtest",
        guards=[OPERATOR],
        status_code=200,
        responses=problem_specs(400, 401, 403, 404, 413, 422),
    )
    async def backtest(self, alerts: AlertsDep, name: RuleName, data: JSONBody[BacktestIn]) -> Backtest:
        """Run the changes observed in `[since, until)` through the rule as it is now; sends nothing.

        `live_fired` lists what the notifier fired for the rule over the same period, and `equal` says
        whether the two agree (they do whenever the rule did not change within the period).
        """
        return await run_backtest(alerts, name, data)


Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size.")]


class DeliveriesController(Controller):
    path = "/api"
    tags = ("alerts",)

    @get("/deliveries", guards=[VIEWER], responses=problem_specs(400, 401, 422))
    async def list_deliveries(
        self,
        alerts: AlertsDep,
        rule: Annotated[
            str | None,
            QueryParameter(
                max_length=64, description="Only this rule.", schema_extra={"pattern": RULE_NAME_PATTERN}
            ),
        ] = None,
        dot: Annotated[
            str | None,
            QueryParameter(
                max_length=12, description="Only this company.", schema_extra={"pattern": DOT_PATTERN}
            ),
        ] = None,
        status: Annotated[DeliveryStatus | None, QueryParameter(description="Only this status.")] = None,
        limit: Limit = 50,
        before: Annotated[
            str | None,
            QueryParameter(
                max_length=32,
                description="next_before of a page.",
                schema_extra={"pattern": "^[0-9a-f]{32}$"},
            ),
        ] = None,
    ) -> DeliveryPage:
        """Webhook deliveries, newest first, each with its attempts and last response code."""
        number = None
        if dot:
            try:
                number = parse_dot(dot)
            except InvalidDotNumber as error:
                raise ProblemError(
                    422, str(error), errors=[FieldError(field="query.dot", reason=str(error))]
                ) from None
        # only values a delivery can hold reach the store (a NUL is refused by PostgreSQL: a 500)
        if rule is not None:
            checked_name(rule, field="query.rule")
        if before is not None and re.fullmatch(DELIVERY_ID_PATTERN, before) is None:
            reason = "`before` is the `next_before` of a page: 32 hex digits"
            raise ProblemError(422, reason, errors=[FieldError(field="query.before", reason=reason)])
        items = await alerts.deliveries.recent(
            rule=rule, dot=number, status=status, limit=limit, before=before
        )
        return DeliveryPage(
            items=[delivery_out(d) for d in items], next_before=items[-1].id if len(items) == limit else None
        )

    @get("/deliveries/{delivery_id:str}", guards=[VIEWER], responses=problem_specs(401, 404, 422))
    async def get_delivery(self, alerts: AlertsDep, delivery_id: DeliveryId) -> DeliveryOut:
        """One delivery with every attempt."""
        valid = re.fullmatch(DELIVERY_ID_PATTERN, delivery_id) is not None
        found = await alerts.deliveries.get(delivery_id) if valid else None
        if found is None:
            raise ProblemError(404, f"no delivery {delivery_id[:40]}")
        return delivery_out(found)

    @post(
        "/deliveries/{delivery_id:str}/resend",
        guards=[OPERATOR],
        status_code=HTTP_202_ACCEPTED,
        responses=problem_specs(401, 403, 404, 422),
    )
    async def resend_delivery(
        self,
        alerts: AlertsDep,
        delivery_id: DeliveryId,
        request: Request[Caller, Any, Any],
    ) -> ResendAccepted:
        """Send a delivery again (same id and body, a fresh round of retries): publishes
        WebhookResendRequested; the notifier sends it. A success at a failing destination releases the
        deliveries held for it.
        """
        return await resend(alerts, delivery_id, request.user)

    @get("/webhook-destinations", guards=[VIEWER], responses=problem_specs(401))
    async def destinations(self, alerts: AlertsDep) -> DestinationStates:
        """Every destination the notifier has sent to, with its failing state and held deliveries."""
        return DestinationStates(
            items=[
                DestinationState(
                    id=d.id,
                    url=d.url,
                    failing=d.failing,
                    failing_since=d.failing_since,
                    last_error=d.last_error,
                    held=d.held,
                )
                for d in await alerts.deliveries.destinations()
            ]
        )
