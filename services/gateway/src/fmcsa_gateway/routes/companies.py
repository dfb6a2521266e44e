"""Companies: register (one or an import), remove, list, and one company's status.

Registering and removing need an admin; reads need a viewer. Every DOT number passes
`fmcsa_events.identifiers` at the edge (422 otherwise); only a canonical one reaches an event.

Read your writes: a registration, a removal or an import answers once the status view shows it (`shown`,
at most `read_your_writes_s`), so a GET or an import right after sees it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import MediaType, RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from fmcsa_events.identifiers import DOT_PATTERN, InvalidDotNumber, SourceKey, parse_dot
from fmcsa_events.models import Trigger
from fmcsa_gateway.auth import ADMIN, VIEWER, Caller
from fmcsa_gateway.domain import (
    ImportPlan,
    ImportRefused,
    NextDue,
    csv_rows,
    json_import_rows,
    next_due,
    plan_import,
)
from fmcsa_gateway.exports import (
    PAGE,
    ExportFormat,
    ExportOperation,
    Format,
    choose,
    company_table,
    export_stream,
    walk,
)
from fmcsa_gateway.ports import Ports, PortsDep, provide_ports
from fmcsa_gateway.problems import FieldError, ProblemError, problem_specs
from fmcsa_gateway.schemas import (
    CompanyPage,
    CompanyRegistration,
    CompanyRemoval,
    CompanyStatusOut,
    ImportResult,
    InvalidImportRow,
    RegisterCompany,
    company_item,
    company_status_json,
)
from fmcsa_status_view.models import CompanyStatus
from fmcsa_status_view.models import Page as ViewPage
from fmcsa_status_view.query import MAX_LIMIT, InvalidCursor, StatusView
from fmcsa_status_view.risk import Light

log = structlog.get_logger(__name__)

SHOWN_POLL_S = 0.01

# The pattern is documented, not enforced by Litestar: parse_dot refuses with the reason people read
# (and also takes leading zeros, which it drops: `007` is company 7).
DotPath = Annotated[
    str,
    PathParameter(
        description="USDOT number: 1 to 8 digits, not all zeros (leading zeros are dropped).",
        schema_extra={"pattern": DOT_PATTERN},
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=512, description="`next_cursor` of the previous page.")
]


def edge_dot(value: str, *, where: str = "path.dot") -> str:
    """The canonical DOT number, or a 422 problem naming the refused value: nothing else goes further."""
    try:
        return parse_dot(value)
    except InvalidDotNumber as error:
        raise ProblemError(422, str(error), errors=[FieldError(field=where, reason=str(error))]) from None


async def shown(ports: Ports, seq: int) -> bool:
    """Wait until the status view has folded the stream up to `seq` (what this request just published),
    for at most `read_your_writes_s`: a GET right after the answer then sees the write, from any gateway
    replica, since they share the view. False when the view is further behind (the write is on the bus
    and will show; the projector is slow or stopped), and the answer is given anyway.
    """
    deadline = time.monotonic() + ports.settings.read_your_writes_s
    while await ports.view.applied_position() < seq:
        if time.monotonic() >= deadline:
            log.warning("write_not_shown_yet", seq=seq, waited_s=ports.settings.read_your_writes_s)
            return False
        await asyncio.sleep(SHOWN_POLL_S)  # poll interval: the projector folds in tens of milliseconds
    return True


async def is_registered(view: StatusView, dot: str) -> bool:
    company = await view.company_status(dot)
    return company is not None and company.active


async def registered_dots(view: StatusView) -> AsyncIterator[str]:
    """Every active company's DOT number, in pages of the view's largest page."""
    cursor: str | None = None
    while True:
        page = await view.list_companies(limit=MAX_LIMIT, cursor=cursor)
        for company in page.items:
            yield company.dot
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def next_due_by_source(ports: Ports, company: CompanyStatus) -> dict[SourceKey, NextDue]:
    """Each requested source's next due time, from the schedules in force (cached: `ScheduleCache`)
    and its last scheduled request: the status row's newest request when the scheduler made it, else
    one sync-log query for every source whose newest request was someone else's.
    """
    due: dict[SourceKey, NextDue] = {}
    if not company.sources:
        return due
    schedules = await ports.schedules.get()
    last: dict[SourceKey, datetime | None] = {}
    others: list[SourceKey] = []
    for source, status in company.sources.items():
        if status.last_trigger in (Trigger.SCHEDULED, Trigger.CATCH_UP):
            last[source] = status.last_requested_at  # the newest request is the scheduler's
        else:
            others.append(source)
    if others:
        found = await ports.view.last_scheduled_requests(company.dot, others)
        for source in others:
            last[source] = found.get(source)
    for source in company.sources:
        schedule = schedules[source]
        due[source] = next_due(
            interval_minutes=schedule.interval_minutes,
            cron=schedule.cron,
            enabled=schedule.enabled,
            last_scheduled_at=last[source],
        )
    return due


async def register_company(ports: Ports, data: RegisterCompany, caller: Caller) -> CompanyRegistration:
    """Publish CompanyRegistered unless the view already has the company active (idempotent)."""
    if await is_registered(ports.view, data.dot_number):
        return CompanyRegistration(dot_number=data.dot_number, name=data.name, created=False, event_id=None)
    published = await ports.commands.register(data.dot_number, data.name, by=caller.subject)
    await shown(ports, published.seq)
    return CompanyRegistration(
        dot_number=data.dot_number, name=data.name, created=True, event_id=published.envelope.event_id
    )


async def import_companies(ports: Ports, content_type: str, body: bytes, caller: Caller) -> ImportResult:
    """Read a JSON list or CSV text, publish one CompanyRegistered per new company, count the rest."""
    if not body.strip():
        raise ProblemError(422, "the import is empty", errors=[FieldError(field="body", reason="empty")])
    plan = await plan_body(ports, content_type, body)
    published = await ports.commands.register_many(plan.accepted, by=caller.subject)
    if published:
        await shown(ports, max(each.seq for each in published))
    return ImportResult(
        rows=plan.rows,
        accepted=len(plan.accepted),
        duplicate=plan.duplicate,
        invalid=len(plan.invalid),
        invalid_rows=[InvalidImportRow(line=r.line, value=r.value, reason=r.reason) for r in plan.invalid],
    )


def plan_upload(content_type: str, body: bytes, *, registered: frozenset[str], max_rows: int) -> ImportPlan:
    """Read and sort an upload (CPU-bound for a large one: the caller runs it in a worker thread)."""
    if "json" in content_type:
        return plan_import(
            json_import_rows(body, max_rows=max_rows), registered=registered, max_rows=max_rows
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("a CSV import must be UTF-8 text") from None
    return plan_import(csv_rows(text), registered=registered, max_rows=max_rows)


async def plan_body(ports: Ports, content_type: str, body: bytes) -> ImportPlan:
    """What importing `body` would do now (the page's preview: nothing is published)."""
    registered = frozenset([dot async for dot in registered_dots(ports.view)])
    try:
        return await anyio.to_thread.run_sync(
            partial(
                plan_upload,
                content_type,
                body,
                registered=registered,
                max_rows=ports.settings.import_max_rows,
            )
        )
    except ImportRefused as error:
        raise ProblemError(422, str(error), errors=[FieldError(field="body", reason=str(error))]) from None


CSV_PATTERN = '^[^"\\x00]*[^"\\x00\\s][^"\\x00]*$'
"""CSV an import always reads: something besides spaces, no quote (an unclosed one is refused), no NUL."""


@dataclass
class ImportOperation(Operation):
    """Documents the three bodies the import takes, which one signature cannot express."""

    def __post_init__(self) -> None:
        rows = Schema(
            type=OpenAPIType.ARRAY,
            max_items=100_000,
            items=Schema(
                one_of=[
                    Schema(type=OpenAPIType.STRING, pattern="^[0-9]{1,8}$"),
                    Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=99_999_999),
                    Schema(
                        type=OpenAPIType.OBJECT,
                        required=["dot_number"],
                        properties={
                            "dot_number": Schema(type=OpenAPIType.STRING, pattern="^[0-9]{1,8}$"),
                            "name": Schema(type=OpenAPIType.STRING, max_length=200),
                        },
                    ),
                ]
            ),
        )
        csv_text = Schema(
            type=OpenAPIType.STRING,
            content_media_type="text/csv",
            pattern=CSV_PATTERN,
            description="Lines of `dot_number,name`. The pattern is unquoted CSV with at least one "
            "character that is not a space; quoted fields (RFC 4180) are read too.",
        )
        self.request_body = RequestBody(
            required=True,
            description="A JSON list, CSV text (header `dot_number,name` optional), or a multipart CSV file.",
            content={
                "application/json": OpenAPIMediaType(schema=rows),
                "text/csv": OpenAPIMediaType(schema=csv_text),
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file"],
                        properties={"file": csv_text},
                    )
                ),
            },
        )


async def _upload_body(request: Request[Any, Any, Any]) -> tuple[str, bytes]:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(RequestEncodingType.MULTI_PART.value):
        form = await request.form()
        upload = form.get("file")
        if isinstance(upload, str):  # a plain form field: the CSV text itself
            return "text/csv", upload.encode()
        if not isinstance(upload, UploadFile):
            raise ProblemError(422, "a multipart import needs a `file` field holding the CSV")
        name = (upload.filename or "").lower()
        kind = (
            "application/json"
            if name.endswith(".json") or "json" in (upload.content_type or "")
            else "text/csv"
        )
        return kind, await upload.read()
    return content_type, await request.body()


class CompaniesController(Controller):
    path = "/api/companies"
    tags = ("companies",)

    @post(
        "/",
        guards=[ADMIN],
        status_code=HTTP_201_CREATED,
        responses={
            200: ResponseSpec(CompanyRegistration, description="Already registered: nothing was published."),
            **problem_specs(400, 401, 403, 413, 422),
        },
    )
    async def register(
        self, ports: PortsDep, data: JSONBody[RegisterCompany], request: Request[Caller, Any, Any]
    ) -> Response[CompanyRegistration]:
        """Register a company to keep in sync. Idempotent: an active company answers 200, publishes nothing;
        a new one publishes CompanyRegistered and answers 201.
        """
        result = await register_company(ports, data, request.user)
        return Response(result, status_code=HTTP_201_CREATED if result.created else HTTP_200_OK)

    @delete(
        "/{dot:str}", guards=[ADMIN], status_code=HTTP_200_OK, responses=problem_specs(401, 403, 404, 422)
    )
    async def remove(
        self, ports: PortsDep, dot: DotPath, request: Request[Caller, Any, Any]
    ) -> CompanyRemoval:
        """Stop syncing a company: publishes CompanyRemoved; its history stays. 404 if not registered."""
        number = edge_dot(dot)
        if not await is_registered(ports.view, number):
            raise ProblemError(404, f"company {number} is not registered")
        published = await ports.commands.remove(number, by=request.user.subject)
        await shown(ports, published.seq)
        return CompanyRemoval(dot_number=number, event_id=published.envelope.event_id)

    @get("/", guards=[VIEWER], responses=problem_specs(401, 422), operation_class=ExportOperation)
    async def list_companies(
        self,
        ports: PortsDep,
        request: Request[Caller, Any, Any],
        failing: Annotated[
            bool | None,
            QueryParameter(description="Only companies with (true) or without (false) a failing source."),
        ] = None,
        never_synced: Annotated[
            bool | None, QueryParameter(description="Only companies never (true) or ever (false) synced.")
        ] = None,
        source: Annotated[
            SourceKey | None, QueryParameter(description="With the filters: that source only.")
        ] = None,
        risk: Annotated[
            Light | None,
            QueryParameter(
                description="Only companies whose carrier record has this risk light (`unknown`: also "
                "those no source has succeeded for yet)."
            ),
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        format: Format = None,
    ) -> Response[CompanyPage]:
        """Registered companies by DOT number with a badge per source; keyset pages (`limit`, `cursor`).

        `format=csv` / `format=jsonl` (or that `Accept`): every matching company, streamed; the CSV has
        the status and key facts, and per source its state, last attempt, last success and upstream as-of.
        """

        def read(size: int, after: str | None) -> Awaitable[ViewPage[CompanyStatus]]:
            return ports.view.list_companies(
                failing=failing, never_synced=never_synced, source=source, risk=risk, limit=size, cursor=after
            )

        fmt = choose(request, format)
        if fmt is not ExportFormat.JSON:
            pages = walk(partial(read, PAGE), company_item)
            return export_stream(pages, fmt, company_table(), name="companies")
        try:
            page = await read(limit, cursor)
        except InvalidCursor as error:
            raise ProblemError(
                422, str(error), errors=[FieldError(field="query.cursor", reason=str(error))]
            ) from None
        return Response(
            CompanyPage(
                limit=limit, next_cursor=page.next_cursor, items=[company_item(c) for c in page.items]
            )
        )

    @get("/{dot:str}/status", guards=[VIEWER], responses=problem_specs(401, 404, 422))
    async def status(self, state: State, dot: DotPath) -> Response[CompanyStatusOut]:
        """One company: per-source status (three times, last error, data summary), the seeds' syncStatus."""
        ports = provide_ports(state)  # the ports dependency, without Litestar's dependency resolution
        number = edge_dot(dot)
        body = await status_body(ports, number)
        if body is None:
            raise ProblemError(404, f"no company {number} is known")
        return Response[Any](body, media_type=MediaType.JSON)


async def status_body(ports: Ports, number: str) -> bytes | None:
    """The status GET's answer for a canonical DOT number; None for a company no event named. The
    answer `company_status` would build, encoded without the models (`company_status_json`); the route
    and its direct path (`fmcsa_gateway.status_path`) both answer with it.
    """
    company = await ports.view.company_status(number)
    if company is None:
        return None
    return company_status_json(company, await next_due_by_source(ports, company))


class ImportController(Controller):
    """`POST /api/companies/import`, apart from the other company routes: its body limit is the import's
    (`import_max_bytes`, set on the router `app.create_app` mounts it on), every other body's is smaller.
    """

    path = "/api/companies/import"
    tags = ("companies",)

    @post(
        "/",
        guards=[ADMIN],
        status_code=HTTP_200_OK,
        operation_class=ImportOperation,
        responses=problem_specs(400, 401, 403, 413, 422),
    )
    async def import_(self, ports: PortsDep, request: Request[Caller, Any, Any]) -> ImportResult:
        """Register many companies from a JSON list or a CSV upload of up to 100,000 rows.

        Answers the accepted, duplicate and invalid counts, and each invalid row with its line and reason.
        """
        content_type, body = await _upload_body(request)
        return await import_companies(ports, content_type, body, request.user)
