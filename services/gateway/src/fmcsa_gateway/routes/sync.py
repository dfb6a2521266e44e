"""The sync log, the summary, and the manual trigger.

Reads need a viewer; `POST /api/sync/trigger` an operator. A trigger answers 202 with the requests it
started and those it skipped because one is in flight; 409 when every pair asked for is in flight.

A trigger names at most `trigger_max_dots` companies, each registered (422 naming the others, nothing
published), and one token subject sends at most `trigger_per_minute` triggers (429 beyond; the API and
the page share the budget). Registered means active in the status view, which folds a registration
tens of milliseconds after its PubAck: a DOT the view does not know yet is looked up again for up to
`read_your_writes_s`, ending early once the view has folded everything the stream held when asked, so
"register, then trigger" works from one client without a race and an unknown DOT is refused quickly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from uuid import UUID, uuid4

import structlog
from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED
from nats.js.errors import NotFoundError

from fmcsa_events.identifiers import DOT_PATTERN, SourceKey
from fmcsa_events.models import Trigger
from fmcsa_events.topology import EVENTS_STREAM
from fmcsa_gateway.auth import OPERATOR, VIEWER, Caller
from fmcsa_gateway.commands import TriggerResult
from fmcsa_gateway.domain import plan_trigger
from fmcsa_gateway.exports import (
    PAGE,
    ExportFormat,
    ExportOperation,
    Format,
    choose,
    export_stream,
    flat_table,
    walk,
)
from fmcsa_gateway.ports import Ports, PortsDep
from fmcsa_gateway.problems import FieldError, ProblemError, problem_specs
from fmcsa_gateway.routes.companies import Cursor, Limit, edge_dot, registered_dots
from fmcsa_gateway.schemas import (
    SkippedRequest,
    StartedRequest,
    SummaryOut,
    SyncLogItem,
    SyncLogPage,
    TriggerAccepted,
    TriggerSync,
    summary,
)
from fmcsa_status_view.models import SyncState
from fmcsa_status_view.query import InvalidCursor

_POLL_S = 0.05
SYNC_LOG_TABLE = flat_table(SyncLogItem)


async def unregistered(ports: Ports, dots: list[str]) -> list[str]:
    """Those of `dots` the status view does not show registered, after waiting for its lag (see above)."""
    missing = [dot for dot in dots if dot not in await ports.view.registered_among(dots)]
    if not missing:
        return []
    try:
        end = (await ports.js.stream_info(EVENTS_STREAM)).state.last_seq
    except NotFoundError:  # no stream yet: nothing was ever registered
        return missing
    deadline = time.monotonic() + ports.settings.read_your_writes_s
    while missing and time.monotonic() < deadline:
        if await ports.view.applied_position() >= end:
            known = await ports.view.registered_among(missing)  # the view has all the stream had
            return [dot for dot in missing if dot not in known]
        await asyncio.sleep(_POLL_S)
        known = await ports.view.registered_among(missing)
        missing = [dot for dot in missing if dot not in known]
    return missing


async def trigger_sync(ports: Ports, data: TriggerSync | None, caller: Caller) -> TriggerAccepted:
    """Start a manual request for each (DOT, source) asked for that is not in flight.

    No DOT numbers means every registered company. Raises a 422 problem for more DOT numbers than
    `trigger_max_dots` (the schema's `maxItems`), a 404 one for any that is not registered (nothing is
    started then), and a 409 one when all are in flight or no company is registered at all: the request
    is well formed, the state has nothing for it.
    """
    asked = (
        [*(data.dot_numbers or []), *([data.organizationId] if data.organizationId else [])] if data else []
    )
    dots = list(dict.fromkeys(asked))
    most = ports.settings.trigger_max_dots
    if len(dots) > most:
        reason = f"a trigger names at most {most} companies ({len(dots)} given); leave it empty for all"
        raise ProblemError(422, reason, errors=[FieldError(field="body.dot_numbers", reason=reason)])
    if dots and (unknown := await unregistered(ports, dots)):
        shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        reason = f"not registered: {shown}; register a company before syncing it"
        raise ProblemError(404, reason, errors=[FieldError(field="body.dot_numbers", reason=reason)])
    if not dots:
        dots = [dot async for dot in registered_dots(ports.view)]
        if not dots:
            raise ProblemError(409, "no company is registered, so there is nothing to sync")
    pairs = plan_trigger(dots, data.sources if data else None)
    batch = uuid4()
    with structlog.contextvars.bound_contextvars(batch_id=str(batch)):
        result = await ports.commands.trigger(pairs, by=caller.subject)
    answer = accepted(result, batch)
    if not result.started:
        raise ProblemError(
            409, f"all {len(result.skipped)} requested (company, source) pairs are already in flight"
        )
    return answer


def accepted(result: TriggerResult, batch: UUID) -> TriggerAccepted:
    return TriggerAccepted(
        batchId=batch,
        started=[
            StartedRequest(dot_number=s.dot, source=s.source, request_id=s.request_id, deadline=s.deadline)
            for s in result.started
        ],
        skipped=[
            SkippedRequest(
                dot_number=s.dot,
                source=s.source,
                held_by_request_id=s.held_by,
                held_by_trigger=s.trigger,
                held_until=s.deadline,
            )
            for s in result.skipped
        ],
    )


@dataclass
class OptionalBody(Operation):
    """The trigger's body may be left out: no body means every registered company and all sources."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


class SyncController(Controller):
    path = "/api/sync"
    tags = ("sync",)

    @get("/log", guards=[VIEWER], responses=problem_specs(401, 422), operation_class=ExportOperation)
    async def log(
        self,
        ports: PortsDep,
        request: Request[Caller, Any, Any],
        dot: Annotated[
            str | None,
            QueryParameter(description="Only this DOT number.", schema_extra={"pattern": DOT_PATTERN}),
        ] = None,
        source: FromQuery[SourceKey | None] = None,
        status: FromQuery[SyncState | None] = None,
        trigger: FromQuery[Trigger | None] = None,
        since: Annotated[
            datetime | None, QueryParameter(description="From this time on (ISO 8601 with a zone).")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        format: Format = None,
    ) -> Response[SyncLogPage]:
        """One row per request, newest first: trigger, who, status, counts, times, error.

        `format=csv` / `format=jsonl` (or that `Accept`): every matching row, streamed (CSV: `counts`
        and `retry` flattened into `counts_fetched`..., `retry_attempt`... columns).
        """
        number = edge_dot(dot, where="query.dot") if dot is not None else None
        if since is not None and since.tzinfo is None:
            raise ProblemError(
                422,
                "since must carry a time zone",
                errors=[FieldError(field="query.since", reason="needs a time zone")],
            )
        read = partial(
            ports.view.sync_log, dot=number, source=source, status=status, trigger=trigger, since=since
        )
        fmt = choose(request, format)
        if fmt is not ExportFormat.JSON:
            pages = walk(lambda after: read(limit=PAGE, cursor=after), SyncLogItem.of)
            return export_stream(pages, fmt, SYNC_LOG_TABLE, name="sync-log")
        try:
            page = await read(limit=limit, cursor=cursor)
        except InvalidCursor as error:
            raise ProblemError(
                422, str(error), errors=[FieldError(field="query.cursor", reason=str(error))]
            ) from None
        return Response(
            SyncLogPage(
                limit=limit, next_cursor=page.next_cursor, items=[SyncLogItem.of(e) for e in page.items]
            )
        )

    @get("/summary", guards=[VIEWER], responses=problem_specs(401, 422))
    async def summary(
        self,
        ports: PortsDep,
        days: Annotated[
            int, QueryParameter(ge=1, le=366, description="Days of outcomes per day to include.")
        ] = 30,
    ) -> SummaryOut:
        """Totals, succeeded, failed, last sync, per source, and outcomes per day (for a chart)."""
        return summary(await ports.view.summary(days=days))

    @post(
        "/trigger",
        guards=[OPERATOR],
        status_code=HTTP_202_ACCEPTED,
        operation_class=OptionalBody,
        responses=problem_specs(400, 401, 403, 404, 409, 413, 422, 429),
        opt={"trigger": True},  # the per-subject rate limit (app.create_app)
    )
    async def trigger(
        self, ports: PortsDep, request: Request[Caller, Any, Any], data: JSONBody[TriggerSync | None] = None
    ) -> TriggerAccepted:
        """Sync now: each (DOT, source) asked for (no DOT numbers: every registered company; no sources:
        all three) that has no request in flight gets a SyncRequested (trigger=manual, requested_by = the
        token's subject). 202 lists started and skipped; 404 for a DOT that is not registered; 409 when all
        are in flight or none is registered; 422 for more than the per-request cap; 429 beyond the
        per-subject rate.
        """
        return await trigger_sync(ports, data, request.user)
