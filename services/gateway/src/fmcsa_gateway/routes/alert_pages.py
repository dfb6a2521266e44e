"""The admin page's alert fragments: rules (create, edit, backtest with its result), deliveries with
resend, and each destination's failing state. They call the API's own functions (routes/alerts.py),
so the page and the API cannot disagree; a refused input comes back as a message (422).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from pydantic import ValidationError

from fmcsa_alerts.deliveries import DeliveryStatus
from fmcsa_events.models import RULE_NAME_PATTERN, ChangeKind
from fmcsa_gateway.alert_schemas import BacktestIn, PutAlertRule
from fmcsa_gateway.alerts import AlertsDep, rule_out
from fmcsa_gateway.auth import ADMIN, OPERATOR, VIEWER, Caller
from fmcsa_gateway.problems import ProblemError
from fmcsa_gateway.routes.alerts import put_rule, resend, run_backtest

KINDS = [kind.value for kind in ChangeKind]
RULES_PAGE_SIZE = 25


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _message(level: str, text: str, status: int = 200, *, trigger: str | None = None) -> Template:
    return Template(
        template_name="fragments/message.html",
        context={"level": level, "text": text},
        status_code=status,
        headers={"HX-Trigger": trigger} if trigger else None,
    )


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in error.errors()[:3]
    )


def rule_from_form(form: Any) -> PutAlertRule:
    """The API body a rule form stands for: one URL per line; the secret, when given, for each URL."""
    kinds = [k for k in form.getall("kinds", []) if isinstance(k, str)] if hasattr(form, "getall") else []
    secret = _text(form, "secret") or None
    urls = [line.strip() for line in _text(form, "urls").splitlines() if line.strip()]
    dots = [d.strip() for d in _text(form, "dots").replace("\n", ",").split(",") if d.strip()]
    subjects = [s.strip() for s in _text(form, "subjects").split(",") if s.strip()]
    conditions: dict[str, Any] = {}
    if value := _text(form, "percentile_at_least"):
        conditions["percentile_at_least"] = value
    if value := _text(form, "delta_at_least"):
        conditions["delta_at_least"] = value
    if subjects:
        conditions["subjects"] = subjects
    return PutAlertRule.model_validate(
        {
            "kinds": kinds,
            "dots": dots or None,
            "conditions": conditions,
            "destinations": [{"url": url, "secret": secret} for url in urls],
            "enabled": _text(form, "enabled") in ("on", "true", "1"),
        }
    )


class AlertPagesController(Controller):
    path = "/ui"
    include_in_schema = False

    @get("/alerts", guards=[VIEWER])
    async def rules(self, alerts: AlertsDep, cursor: FromQuery[str | None] = None) -> Template:
        if cursor is not None and re.fullmatch(RULE_NAME_PATTERN, cursor) is None:
            return _message("error", "that page of rules does not exist", 422)
        found, next_cursor = await alerts.rules(limit=RULES_PAGE_SIZE, after=cursor)
        since = (alerts.clock() - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        context = {
            "rules": [rule_out(rule) for rule in found],
            "kinds": KINDS,
            "since": since,
            "next_cursor": next_cursor,
            "paged": cursor is not None,
        }
        return Template(template_name="fragments/alerts.html", context=context)

    @put("/alerts/{name:str}", guards=[ADMIN], status_code=200)
    async def save(
        self, alerts: AlertsDep, name: FromPath[str], request: Request[Caller, Any, Any]
    ) -> Template:
        form = await request.form()
        try:
            data = rule_from_form(form)
            saved = await put_rule(alerts, name, data, request.user)
        except ValidationError as error:
            return _message("error", _reason(error), 422)
        except ProblemError as problem:
            return _message("error", problem.detail, problem.status_code)
        return _message("ok", f"saved rule {saved.name}", trigger="alerts-changed")

    @post("/alerts/{name:str}/backtest", guards=[OPERATOR], status_code=200)
    async def backtest(
        self, alerts: AlertsDep, name: FromPath[str], request: Request[Caller, Any, Any]
    ) -> Template:
        form = await request.form()
        try:
            since = datetime.fromisoformat(_text(form, "since")).replace(tzinfo=UTC)
            until_text = _text(form, "until")
            until = datetime.fromisoformat(until_text).replace(tzinfo=UTC) if until_text else None
            result = await run_backtest(alerts, name, BacktestIn(since=since, until=until))
        except (ValueError, ValidationError) as error:
            return _message("error", f"since/until: {error}"[:300], 422)
        except ProblemError as problem:
            return _message("error", problem.detail, problem.status_code)
        return Template(template_name="fragments/backtest.html", context={"result": result})

    @get("/deliveries", guards=[VIEWER])
    async def deliveries(
        self, alerts: AlertsDep, rule: FromQuery[str] = "", status: FromQuery[str] = ""
    ) -> Template:
        if rule and re.fullmatch(RULE_NAME_PATTERN, rule) is None:
            return _message("error", f"a rule name must match {RULE_NAME_PATTERN}", 422)
        wanted = DeliveryStatus(status) if status in {s.value for s in DeliveryStatus} else None
        items = await alerts.deliveries.recent(rule=rule or None, status=wanted, limit=50)
        destinations = await alerts.deliveries.destinations()
        return Template(
            template_name="fragments/deliveries.html",
            context={
                "deliveries": items,
                "destinations": destinations,
                "statuses": [s.value for s in DeliveryStatus],
                "status": status,
                "rule": rule,
            },
        )

    @post("/deliveries/{delivery_id:str}/resend", guards=[OPERATOR], status_code=200)
    async def resend(
        self, alerts: AlertsDep, delivery_id: FromPath[str], request: Request[Caller, Any, Any]
    ) -> Template:
        try:
            accepted = await resend(alerts, delivery_id, request.user)
        except ProblemError as problem:
            return _message("error", problem.detail, problem.status_code)
        return _message(
            "ok", f"resend of {accepted.delivery_id[:12]} requested", trigger="deliveries-changed"
        )
