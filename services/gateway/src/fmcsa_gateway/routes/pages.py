"""The admin page: a server-rendered shell at `/` and HTML fragments under `/ui/` that htmx swaps in.

The shell is public (it holds no data); every fragment needs a token like the API it mirrors: viewer
to read, operator to trigger, admin to register companies and change schedules. The page keeps the
token in memory only (a script variable: never in storage or a script-readable cookie, so a reload asks
for it again), sends it as a bearer header with every htmx request, and trades it once at
`POST /ui/session` for an `HttpOnly; Secure; SameSite=Strict` cookie scoped to `/api/events`, which the
EventSource sends; `DELETE /ui/session` clears it. Mutations reuse the API's own functions, so the page
and the API cannot disagree; a refused input comes back as the fragment with its message (422).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import Cookie, UploadFile
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter
from litestar.response import Template
from pydantic import ValidationError

from fmcsa_events.identifiers import InvalidDotNumber, SourceKey, parse_dot
from fmcsa_events.lag import Lag, stream_lag
from fmcsa_events.text import has_control_characters
from fmcsa_gateway.auth import ADMIN, COOKIE_PATH, OPERATOR, TOKEN_COOKIE, VIEWER, Caller, RoleToken
from fmcsa_gateway.bus_state import current_schedules, scheduler_status, upstream_paces
from fmcsa_gateway.chart import outcome_chart, trend_chart
from fmcsa_gateway.panels import authority_panel, dollars
from fmcsa_gateway.ports import PortsDep
from fmcsa_gateway.problems import ProblemError
from fmcsa_gateway.routes.carriers import Q_MAX, CarrierRecord, ViolationBasic, record_of
from fmcsa_gateway.routes.companies import import_companies, next_due_by_source, plan_body, register_company
from fmcsa_gateway.routes.schedules import put_schedule
from fmcsa_gateway.routes.sync import trigger_sync
from fmcsa_gateway.schemas import PutSchedule, RegisterCompany, TriggerSync
from fmcsa_status_view.models import CompanyStatus
from fmcsa_status_view.query import InvalidCursor
from fmcsa_status_view.risk import Light
from fmcsa_status_view.rows import CarrierRow

PAGE_SIZE = 25
PREVIEW_ROWS = 20
"""How many of the rows an import would register the preview lists (all the refused ones are listed)."""
TIMELINE_SIZE = 50
SOURCES = [s.value for s in SourceKey]
LIGHTS = [light.value for light in Light]
BASICS = [basic.value for basic in ViolationBasic]


def ago(moment: datetime | None, now: datetime) -> str:
    """`3 min ago`, `in 2 h`, or `never`: short relative times for people; the title keeps the exact one."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86_400:
        text = f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86_400} d"
    return f"in {text}" if future else f"{text} ago"


def shown(value: Any) -> str:
    """A change's before or after value for people: `none` for null, a mapping as `key: value` pairs."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')}: {shown(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "; ".join(shown(v) for v in value) or "none"
    return str(value)


def shown_change(before: Any, after: Any) -> tuple[str, str]:
    """A change's before and after for people. Two mappings show only the keys whose values differ
    (a BASIC's threshold and measure that stayed put are noise next to its percentile), unless none do.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        if keys:
            return shown({k: before.get(k) for k in keys}), shown({k: after.get(k) for k in keys})
    return shown(before), shown(after)


def session_cookie(token: str, max_age: int) -> Cookie:
    """The live stream's cookie: no script reads it, only HTTPS (or localhost) carries it, no other site
    sends it, and the browser sends it to `/api/events` alone. `max_age` 0 deletes it.
    """
    return Cookie(
        key=TOKEN_COOKIE,
        value=token,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        secure=True,
        samesite="strict",
    )


def _context(ports: PortsDep, **values: Any) -> dict[str, Any]:
    now = ports.clock()
    return {"now": now, "ago": lambda moment: ago(moment, now), "sources": SOURCES, **values}


def _reason(error: ValidationError) -> str:
    """The people-readable reasons of a refused form value (pydantic's message without its URL)."""
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors()[:3])


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


class PagesController(Controller):
    path = "/"
    include_in_schema = False

    @get("/")
    async def index(self) -> Template:
        return Template(template_name="index.html", context={"sources": SOURCES})

    @get("/ui/whoami", guards=[VIEWER])
    async def whoami(self, request: Request[Caller, Any, Any]) -> dict[str, str]:
        return {"subject": request.user.subject, "role": request.user.role.value}

    @post("/ui/session", guards=[VIEWER], status_code=204)
    async def open_session(self, request: Request[Caller, RoleToken, Any]) -> Response[None]:
        """Set the live stream's cookie to the bearer token of this request, for as long as it is valid."""
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        left = int((request.auth.exp - datetime.now(UTC)).total_seconds())
        return Response(None, status_code=204, cookies=[session_cookie(token, max(left, 1))])

    @delete("/ui/session", guards=[VIEWER], status_code=204)
    async def close_session(self) -> Response[None]:
        """Clear the live stream's cookie (signing out)."""
        return Response(None, status_code=204, cookies=[session_cookie("", 0)])

    @get("/ui/summary", guards=[VIEWER])
    async def summary(self, ports: PortsDep) -> Template:
        view = await ports.view.summary(days=30)
        chart = outcome_chart([(d.day, d.succeeded, d.failed) for d in view.outcomes_per_day], days=30)
        try:  # shown when the oldest event the status has not folded is over a second old
            lag: Lag | None = await stream_lag(ports.js, view.position)
        except Exception:  # the bus away: the page still shows what the status holds
            lag = None
        return Template(
            template_name="fragments/summary.html",
            context=_context(ports, summary=view, chart=chart, lag=lag),
        )

    @get("/carriers/{dot:str}")
    async def carrier_page(self, dot: Annotated[str, PathParameter(max_length=64)]) -> Template:
        """The carrier page's shell (public, no data, like `/`): the page signs in, then asks
        `/ui/carriers/{dot}` for the carrier; the URL can be shared and reloaded.
        """
        try:
            number = parse_dot(dot)
        except InvalidDotNumber as error:
            raise ProblemError(404, str(error)) from None
        return Template(template_name="index.html", context={"sources": SOURCES, "carrier": number})

    @get("/ui/companies", guards=[VIEWER])
    async def companies(
        self,
        ports: PortsDep,
        failing: FromQuery[bool] = False,
        q: Annotated[str, QueryParameter(max_length=Q_MAX)] = "",
        risk: Annotated[str, QueryParameter(max_length=16)] = "",
        cursor: Annotated[str, QueryParameter(max_length=512)] = "",
    ) -> Template:
        """The company list: every registered company, or those whose carrier record matches `q` (a DOT
        number, a docket number or the start of the legal name: `GET /api/carriers?q=`), each row with
        its risk light; `risk` keeps one light, `failing` the failing companies.
        """
        message = None
        text = q.strip()
        light = risk if risk in LIGHTS else None
        records: dict[str, CarrierRow] = {}
        items: list[CompanyStatus] = []
        next_cursor = None
        if risk and light is None:
            message = f"risk must be one of {', '.join(LIGHTS)}"
        elif text and has_control_characters(text):
            message = "the search text must not hold control characters"
        elif text:
            try:
                found = await ports.view.search_carriers(
                    q=text, risk=light, limit=PAGE_SIZE, cursor=cursor or None
                )
            except InvalidCursor:
                found = await ports.view.search_carriers(q=text, risk=light, limit=PAGE_SIZE)
            records = {row.dot: row for row in found.items}
            next_cursor = found.next_cursor
            for number in records:
                if (company := await ports.view.company_status(number)) is not None:
                    items.append(company)
            if not items and light in (None, Light.UNKNOWN.value):
                # a registered company no source has succeeded for has no record yet: its DOT finds it
                try:
                    number = parse_dot(text)
                except InvalidDotNumber:
                    pass
                else:
                    if (company := await ports.view.company_status(number)) is not None:
                        items = [company]
            if failing:
                items = [company for company in items if company.failing]
            message = None if items else f"no company matches {text}"
        else:
            try:
                page = await ports.view.list_companies(
                    failing=True if failing else None, risk=light, limit=PAGE_SIZE, cursor=cursor or None
                )
            except InvalidCursor:
                page = await ports.view.list_companies(
                    failing=True if failing else None, risk=light, limit=PAGE_SIZE
                )
            items, next_cursor = list(page.items), page.next_cursor
        for company in items:
            if company.dot not in records and (row := await ports.view.carrier(company.dot)) is not None:
                records[company.dot] = row
        filters = {"failing": "true" if failing else "false", "q": text, "risk": light or ""}
        context = _context(
            ports,
            companies=items,
            records=records,
            next_cursor=next_cursor,
            failing=failing,
            q=text,
            risk=light,
            filters=urlencode({k: v for k, v in filters.items() if v}),
            export_filters=urlencode({k: v for k, v in filters.items() if k != "q" and v != "false" and v}),
            paged=bool(cursor),
            message=message,
        )
        return Template(template_name="fragments/companies.html", context=context)

    @get("/ui/companies/{dot:str}/row", guards=[VIEWER])
    async def row(self, ports: PortsDep, dot: Annotated[str, PathParameter(max_length=64)]) -> Template:
        try:
            company = await ports.view.company_status(parse_dot(dot))
        except InvalidDotNumber as error:
            raise ProblemError(422, str(error)) from None
        if company is None:
            raise ProblemError(404, f"no company {dot} is known")
        record = await ports.view.carrier(company.dot)
        return Template(
            template_name="fragments/row.html",
            context=_context(ports, company=company, records={company.dot: record} if record else {}),
        )

    @get("/ui/carriers/{dot:str}", guards=[VIEWER])
    async def carrier(self, ports: PortsDep, dot: Annotated[str, PathParameter(max_length=64)]) -> Template:
        """The carrier page's content: the facts first (name, USDOT status, the risk light and its reasons,
        authority and insurance, rating, OOS rates beside the national averages), then the BASICs and
        their trend, the violations (a fragment of their own), the changes and each source's sync state.
        """
        try:
            row = await record_of(ports, dot)
        except ProblemError as problem:
            if problem.status_code != 404:
                raise
            return Template(
                template_name="fragments/carrier.html",
                context=_context(ports, dot=parse_dot(dot), record=None, company=None),
            )
        company = await ports.view.company_status(row.dot)
        changes = await ports.view.changes(dot=row.dot, limit=TIMELINE_SIZE)
        history = await ports.view.history(row.dot, source=SourceKey.CSA)
        context = _context(
            ports,
            dot=row.dot,
            record=CarrierRecord.of(row),
            company=company,
            dollars=dollars,
            due=await next_due_by_source(ports, company) if company is not None else {},
            changes=list(changes.items),
            more_changes=changes.next_cursor is not None,
            trend=trend_chart(
                (s.subject, [(p.as_of, p.values.get("percentile")) for p in s.points]) for s in history
            ),
            shown_change=shown_change,
        )
        return Template(template_name="fragments/carrier.html", context=context)

    @get("/ui/carriers/{dot:str}/violations", guards=[VIEWER])
    async def carrier_violations(
        self,
        ports: PortsDep,
        dot: Annotated[str, PathParameter(max_length=64)],
        basic: Annotated[str, QueryParameter(max_length=32)] = "",
        oos: Annotated[str, QueryParameter(max_length=8)] = "",
        cursor: Annotated[str, QueryParameter(max_length=512)] = "",
    ) -> Template:
        """A carrier's violation rows, newest inspection first, filtered by BASIC and OOS, paged."""
        row = await record_of(ports, dot)
        message = None
        if basic and basic not in BASICS:
            message, basic = f"basic must be one of {', '.join(BASICS)}", ""
        flag = {"true": True, "false": False}.get(oos)
        if flag is None:
            oos = ""
        try:
            page = await ports.view.carrier_violations(
                row.dot, basic=basic or None, oos=flag, limit=PAGE_SIZE, cursor=cursor or None
            )
        except InvalidCursor:
            page = await ports.view.carrier_violations(
                row.dot, basic=basic or None, oos=flag, limit=PAGE_SIZE
            )
        filters = {"basic": basic, "oos": oos}
        context = _context(
            ports,
            dot=row.dot,
            violations=list(page.items),
            next_cursor=page.next_cursor,
            complete=(row.violations or {}).get("complete"),
            basics=BASICS,
            basic=basic,
            oos=oos,
            filters=urlencode({k: v for k, v in filters.items() if v}),
            paged=bool(cursor),
            message=message,
        )
        return Template(template_name="fragments/violations.html", context=context)

    @get("/ui/companies/{dot:str}", guards=[VIEWER])
    async def detail(self, ports: PortsDep, dot: Annotated[str, PathParameter(max_length=64)]) -> Template:
        try:
            number = parse_dot(dot)
        except InvalidDotNumber as error:
            raise ProblemError(422, str(error)) from None
        company = await ports.view.company_status(number)
        if company is None:
            return Template(
                template_name="fragments/detail.html", context=_context(ports, dot=number, company=None)
            )
        log = await ports.view.sync_log(dot=number, limit=20)
        changes = await ports.view.changes(dot=number, limit=TIMELINE_SIZE)
        history = await ports.view.history(number, source=SourceKey.CSA)
        csa = company.sources.get(SourceKey.CSA)
        basics = (csa.last_summary or {}).get("basics") if csa is not None else None
        authority = company.sources.get(SourceKey.AUTHORITY)
        context = _context(
            ports,
            dot=number,
            company=company,
            log=list(log.items),
            basics=basics if isinstance(basics, list) else [],
            authority=authority_panel(
                authority.last_summary if authority is not None else None, today=ports.clock().date()
            ),
            authority_as_of=authority.upstream_as_of if authority is not None else None,
            dollars=dollars,
            due=await next_due_by_source(ports, company),
            changes=list(changes.items),
            more_changes=changes.next_cursor is not None,
            trend=trend_chart(
                (s.subject, [(p.as_of, p.values.get("percentile")) for p in s.points]) for s in history
            ),
            shown_change=shown_change,
            gaps=await ports.view.gaps(number, today=ports.clock().date()),
        )
        return Template(template_name="fragments/detail.html", context=context)

    @post("/ui/companies", guards=[ADMIN], status_code=200)
    async def register(self, ports: PortsDep, request: Request[Caller, Any, Any]) -> Template:
        form = await request.form()
        raw_dot, name = _form_text(form, "dot_number"), _form_text(form, "name")
        try:
            data = RegisterCompany(dot_number=raw_dot, name=name or None)
        except ValidationError as error:
            return Template(
                template_name="fragments/message.html",
                context={"level": "error", "text": _reason(error)},
                status_code=422,
            )
        result = await register_company(ports, data, request.user)
        text = (
            f"registered {result.dot_number}"
            if result.created
            else f"{result.dot_number} was already registered"
        )
        return Template(
            template_name="fragments/message.html",
            context={"level": "ok", "text": text},
            headers={"HX-Trigger": "companies-changed"},
        )

    @post("/ui/sync/trigger", guards=[OPERATOR], status_code=200, opt={"trigger": True})
    async def trigger(self, ports: PortsDep, request: Request[Caller, Any, Any]) -> Template:
        form = await request.form()
        raw_dot = _form_text(form, "dot_number")
        try:
            data = TriggerSync(dot_numbers=[raw_dot] if raw_dot else None)
            result = await trigger_sync(ports, data, request.user)
        except ValidationError as error:
            return Template(
                template_name="fragments/message.html",
                context={"level": "error", "text": _reason(error)},
                status_code=422,
            )
        except ProblemError as problem:  # the page swaps 409 and 422 fragments (static/app.js)
            return Template(
                template_name="fragments/message.html",
                context={"level": "warn", "text": problem.detail},
                status_code=409 if problem.status_code == 409 else 422,
            )
        text = f"started {len(result.started)} request(s)"
        if result.skipped:
            text += f", skipped {len(result.skipped)} already in flight"
        return Template(template_name="fragments/message.html", context={"level": "ok", "text": text})

    @get("/ui/schedules", guards=[VIEWER])
    async def schedules(self, ports: PortsDep) -> Template:
        items = await current_schedules(ports.js)
        return Template(template_name="fragments/schedules.html", context=_context(ports, schedules=items))

    @put("/ui/schedules/{source:str}", guards=[ADMIN], status_code=200)
    async def change_schedule(
        self, ports: PortsDep, source: FromPath[SourceKey], request: Request[Caller, Any, Any]
    ) -> Template:
        form = await request.form()
        mode = _form_text(form, "mode") or "interval"
        interval_text, cron = _form_text(form, "interval_minutes"), _form_text(form, "cron")
        enabled = _form_text(form, "enabled") in ("on", "true", "1")
        error: str | None = None
        schedule = None
        try:
            interval = int(interval_text) if mode == "interval" else None
        except ValueError:
            error = f"interval_minutes must be a whole number of minutes, got {interval_text[:20]!r}"
        else:
            try:
                data = PutSchedule(
                    interval_minutes=interval, cron=cron if mode == "cron" else None, enabled=enabled
                )
                schedule = await put_schedule(ports, source, data, request.user)
            except ProblemError as problem:
                error = problem.detail
            except ValidationError as invalid:
                error = _reason(invalid)
        context = _context(
            ports,
            schedule=schedule,
            source=source.value,
            mode=mode,
            interval_text=interval_text,
            cron=cron,
            enabled=enabled,
            error=error,
            saved=schedule is not None,
        )
        return Template(
            template_name="fragments/schedule_form.html", context=context, status_code=422 if error else 200
        )

    @get("/ui/scheduler", guards=[VIEWER])
    async def scheduler(self, ports: PortsDep) -> Template:
        status = await scheduler_status(ports.state_kv, now=ports.clock())
        return Template(template_name="fragments/scheduler.html", context=_context(ports, status=status))

    @get("/ui/pace", guards=[VIEWER])
    async def pace(self, ports: PortsDep) -> Template:
        paces = await upstream_paces(ports.js, now=ports.clock())
        return Template(template_name="fragments/pace.html", context=_context(ports, paces=paces))


class ImportPageController(Controller):
    """`POST /ui/companies/import`: the page's CSV (or JSON) import, mounted beside the API's import
    (`app.create_app`) for its larger body limit. `mode=preview` is a dry run: what the import would do now
    (new, duplicate and refused rows, each refused row with its line and reason), nothing published;
    `mode=register` imports as `POST /api/companies/import` does (the same function).
    """

    path = "/ui/companies/import"
    include_in_schema = False

    @post("/", guards=[ADMIN], status_code=200)
    async def import_(self, ports: PortsDep, request: Request[Caller, Any, Any]) -> Template:
        form = await request.form()
        upload, register = form.get("file"), _form_text(form, "mode") == "register"
        body = await upload.read() if isinstance(upload, UploadFile) else b""
        if not body.strip():
            return Template(
                template_name="fragments/message.html",
                context={"level": "error", "text": "choose a CSV file with lines of dot_number,name first"},
                status_code=422,
            )
        name = (upload.filename or "").lower() if isinstance(upload, UploadFile) else ""
        kind = "application/json" if name.endswith(".json") else "text/csv"
        try:
            if register:
                result = await import_companies(ports, kind, body, request.user)
            else:
                plan = await plan_body(ports, kind, body)
        except ProblemError as problem:
            return Template(
                template_name="fragments/message.html",
                context={"level": "error", "text": problem.detail},
                status_code=422,
            )
        if register:
            return Template(
                template_name="fragments/import.html",
                context={
                    "registered": True,
                    "rows": result.rows,
                    "accepted": result.accepted,
                    "duplicate": result.duplicate,
                    "invalid": result.invalid_rows,
                    "preview": [],
                },
                headers={"HX-Trigger": "companies-changed"},
            )
        return Template(
            template_name="fragments/import.html",
            context={
                "registered": False,
                "rows": plan.rows,
                "accepted": len(plan.accepted),
                "duplicate": plan.duplicate,
                "invalid": plan.invalid,
                "preview": plan.accepted[:PREVIEW_ROWS],
            },
        )
