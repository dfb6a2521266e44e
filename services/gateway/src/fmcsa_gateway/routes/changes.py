"""The change feed: what changed in each carrier's public record, before and after, and its history.

`GET /api/changes` lists the `CarrierDataChanged` facts the status projector folded, newest first, with
the filters `dot`, `source`, `kind`, `since` and keyset pages; `GET /api/companies/{dot}/history` gives a
company's series by upstream as-of date (csa: each BASIC's percentile and measure). Both need a viewer,
and both read only the status view, so they answer exactly what a rebuild from the stream would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from fmcsa_events.identifiers import DOT_PATTERN, SourceKey
from fmcsa_events.models import ChangeKind, change_kinds_of
from fmcsa_gateway.auth import VIEWER, Caller
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
from fmcsa_gateway.routes.companies import Cursor, DotPath, Limit, edge_dot
from fmcsa_gateway.schemas import ChangeItem, ChangePage, CompanyGaps, CompanyHistory, GapOut, company_history
from fmcsa_status_view.query import InvalidCursor

CHANGE_TABLE = flat_table(ChangeItem)


def check_change_filters(source: SourceKey | None, kind: ChangeKind | None, since: datetime | None) -> bool:
    """Whether the filters can match anything: a kind of another source cannot (its page is empty, as for
    any filter nothing matches; a derived kind such as `risk_changed` belongs to every source). A naive
    time is refused as a 422 problem (the schema's date-time has a zone, so only a hand-made call sends
    one).
    """
    if since is not None and since.tzinfo is None:
        raise ProblemError(
            422,
            "since must carry a time zone",
            errors=[FieldError(field="query.since", reason="needs a time zone")],
        )
    return source is None or kind is None or kind in change_kinds_of(source)


async def list_changes(
    ports: Ports,
    *,
    dot: str | None = None,
    source: SourceKey | None = None,
    kind: ChangeKind | None = None,
    since: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> ChangePage:
    """One page of the feed, newest first; a DOT is checked at the edge, a bad cursor is a 422."""
    number = edge_dot(dot, where="query.dot") if dot is not None else None
    if not check_change_filters(source, kind, since):
        return ChangePage(limit=limit, next_cursor=None, items=[])
    try:
        page = await ports.view.changes(
            dot=number,
            source=source,
            kind=None if kind is None else kind.value,
            since=since,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as error:
        raise ProblemError(
            422, str(error), errors=[FieldError(field="query.cursor", reason=str(error))]
        ) from None
    return ChangePage(limit=limit, next_cursor=page.next_cursor, items=[ChangeItem.of(e) for e in page.items])


async def change_pages(
    ports: Ports,
    *,
    dot: str | None = None,
    source: SourceKey | None = None,
    kind: ChangeKind | None = None,
    since: datetime | None = None,
) -> AsyncIterator[list[Any]]:
    """Every change the filters match, newest first, a page at a time (the filters checked first)."""
    number = edge_dot(dot, where="query.dot") if dot is not None else None
    if not check_change_filters(source, kind, since):
        return _nothing()
    read = partial(
        ports.view.changes,
        dot=number,
        source=source,
        kind=None if kind is None else kind.value,
        since=since,
        limit=PAGE,
    )
    return walk(lambda after: read(cursor=after), ChangeItem.of)


async def _nothing() -> AsyncIterator[list[Any]]:
    yield []


async def history_of(ports: Ports, dot: str, source: SourceKey) -> CompanyHistory:
    """A known company's series for one source; a 404 problem for a company no event ever named."""
    number = edge_dot(dot)
    if await ports.view.company_status(number) is None:
        raise ProblemError(404, f"no company {number} is known")
    return company_history(number, source, await ports.view.history(number, source=source))


class ChangesController(Controller):
    path = "/api"
    tags = ("changes",)

    @get("/changes", guards=[VIEWER], responses=problem_specs(401, 422), operation_class=ExportOperation)
    async def changes(
        self,
        ports: PortsDep,
        request: Request[Caller, Any, Any],
        dot: Annotated[
            str | None,
            QueryParameter(description="Only this DOT number.", schema_extra={"pattern": DOT_PATTERN}),
        ] = None,
        source: Annotated[SourceKey | None, QueryParameter(description="Only this source.")] = None,
        kind: Annotated[
            ChangeKind | None,
            QueryParameter(
                description="Only this kind of change (a kind of another `source` matches nothing)."
            ),
        ] = None,
        since: Annotated[
            datetime | None,
            QueryParameter(description="Observed at or after this time (ISO 8601 with a zone)."),
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        format: Format = None,
    ) -> Response[ChangePage]:
        """What changed in carriers' public records, newest first: each fact with its value before and
        after, the upstream as-of date and the request that observed it.

        `format=csv` / `format=jsonl` (or that `Accept`): every matching change, streamed (CSV: `before`
        and `after` as JSON text).
        """
        fmt = choose(request, format)
        if fmt is not ExportFormat.JSON:
            pages = await change_pages(ports, dot=dot, source=source, kind=kind, since=since)
            return export_stream(pages, fmt, CHANGE_TABLE, name="changes")
        return Response(
            await list_changes(
                ports, dot=dot, source=source, kind=kind, since=since, limit=limit, cursor=cursor
            )
        )

    @get("/companies/{dot:str}/gaps", guards=[VIEWER], responses=problem_specs(401, 404, 422))
    async def gaps(self, ports: PortsDep, dot: DotPath) -> CompanyGaps:
        """The months a monthly source (csa, violations) has no history point for, between its first point
        and last month: the system was down, or every fetch failed that month. Each says whether the
        upstream still serves that month. 404 for a company no event ever named.
        """
        number = edge_dot(dot)
        if await ports.view.company_status(number) is None:
            raise ProblemError(404, f"no company {number} is known")
        found = await ports.view.gaps(number, today=ports.clock().date())
        return CompanyGaps(
            dot_number=number, gaps=[GapOut.model_validate(g, from_attributes=True) for g in found]
        )

    @get("/companies/{dot:str}/history", guards=[VIEWER], responses=problem_specs(401, 404, 422))
    async def history(
        self,
        ports: PortsDep,
        dot: DotPath,
        source: Annotated[
            SourceKey, QueryParameter(description="The source whose series to give (csa has them).")
        ] = SourceKey.CSA,
    ) -> CompanyHistory:
        """A company's series by upstream as-of date, oldest first: for csa each BASIC's percentile (null
        while Not Public) and measure. 404 for a company no event ever named.
        """
        return await history_of(ports, dot, source)
