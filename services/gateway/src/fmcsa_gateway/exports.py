"""Exports of the paged lists (companies, change feed, sync log) as CSV or JSON lines, streamed.

A list route answers its JSON page as before; `?format=csv` or `Accept: text/csv` answers `text/csv`,
`?format=jsonl` or `Accept: application/x-ndjson` answers JSON lines (one item per line, the fields of
the JSON items). An export holds every item matching the route's filters, not one page (`limit` and
`cursor` do not apply), in the list's own order: the route walks the status view's keyset pages of
`MAX_LIMIT` items and yields one chunk per page (Litestar `Stream`), so the gateway holds one page at
a time whatever the number of items. Each page is its own read (snapshot): an item added while an
export runs appears in it if its key sorts after the page being read.

CSV: a header row, then one row per item. Nested objects are flattened into `parent_field` columns,
lists are joined with `;`, JSON values (a change's `before`/`after`) are JSON text, booleans are
`true`/`false`, a null is an empty cell. Formula injection (OWASP "CSV Injection"): a text cell that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`, so a spreadsheet shows
it as text instead of evaluating it; numbers and times are written as they are.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from litestar import Request, Response
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter
from litestar.response import Stream
from pydantic import BaseModel

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.models import Page
from fmcsa_status_view.query import MAX_LIMIT

T = TypeVar("T")

CSV = "text/csv"
NDJSON = "application/x-ndjson"
JSON = "application/json"


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    JSONL = "jsonl"


FORMAT_DESCRIPTION = (
    "`json` (the default): one page. `csv` or `jsonl`: every matching item, streamed (also chosen by "
    "`Accept: text/csv` or `Accept: application/x-ndjson`); `limit` and `cursor` do not apply."
)

Format = Annotated[ExportFormat | None, QueryParameter(description=FORMAT_DESCRIPTION)]
"""The `format` query parameter of the list routes."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """A CSV text cell a spreadsheet shows as text (OWASP CSV injection): `'` before a formula start."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Any) -> str:
    """One CSV cell of a JSON-mode value (see the module's rules)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return safe_text(";".join(value))
    return safe_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True)
class Table:
    """The CSV shape of one list: its header and how a JSON-mode item becomes a row."""

    header: Sequence[str]
    row: Callable[[dict[str, Any]], Sequence[Any]]


def flat_table(model: type[BaseModel], *, keep: Iterable[str] = ()) -> Table:
    """A table of a model's fields: a field holding a nested model (e.g. `counts`) becomes one column
    per field of it (`counts_fetched`), except the fields in `keep` (written as JSON text).
    """
    columns: list[tuple[str, str | None]] = []
    kept = set(keep)
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is None or name in kept:
            columns.append((name, None))
        else:
            columns.extend((name, sub) for sub in nested.model_fields)

    def row(item: dict[str, Any]) -> list[Any]:
        values: list[Any] = []
        for name, sub in columns:
            value = item.get(name)
            values.append(value if sub is None else (value or {}).get(sub))
        return values

    return Table([name if sub is None else f"{name}_{sub}" for name, sub in columns], row)


COMPANY_FIELDS = (
    "dot_number",
    "name",
    "active",
    "registered_at",
    "success",
    "failing",
    "never_synced",
    "failing_sources",
    "last_run",
    "last_success_at",
)
SOURCE_FIELDS = ("state", "failing", "last_finished_at", "last_success_at", "upstream_as_of")


def company_table() -> Table:
    """The company list's CSV: the company's status and key facts, then per source (`SourceKey`
    order) its state, whether it fails, its last attempt, last success and upstream as-of, e.g.
    `csa_state`, `csa_last_success_at`, `csa_upstream_as_of` (empty for a source never requested).
    """
    header = [*COMPANY_FIELDS, *(f"{s.value}_{f}" for s in SourceKey for f in SOURCE_FIELDS)]

    def row(item: dict[str, Any]) -> list[Any]:
        sources = item.get("sources") or {}
        values = [item.get(name) for name in COMPANY_FIELDS]
        for source in SourceKey:
            badge = sources.get(source.value) or {}
            values.extend(badge.get(f) for f in SOURCE_FIELDS)
        return values

    return Table(header, row)


async def walk(
    fetch: Callable[[str | None], Awaitable[Page[T]]], convert: Callable[[T], BaseModel]
) -> AsyncIterator[list[BaseModel]]:
    """Every page of a keyset list, `MAX_LIMIT` items at a time (`fetch(cursor)` reads one), converted."""
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield [convert(item) for item in page.items]
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


PAGE = MAX_LIMIT
"""Items an export reads per page (and writes per chunk): the view's largest page."""


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def choose(request: Request[Any, Any, Any], given: ExportFormat | None) -> ExportFormat:
    """The format asked for: the `format` parameter, else the best of the `Accept` header (JSON when
    the header names none of the three, or prefers JSON).
    """
    if given is not None:
        return given
    accept = request.headers.get("accept")
    if not accept:
        return ExportFormat.JSON
    best = request.accept.best_match([JSON, CSV, NDJSON], default=JSON)
    return {CSV: ExportFormat.CSV, NDJSON: ExportFormat.JSONL}.get(best or JSON, ExportFormat.JSON)


async def _chunks(
    pages: AsyncIterator[Sequence[BaseModel]], fmt: ExportFormat, table: Table
) -> AsyncIterator[bytes]:
    """CSV or JSON-lines bytes, one chunk per page; the memory is one page's."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if fmt is ExportFormat.CSV:
        writer.writerow(table.header)
    async for items in pages:
        for item in items:
            if fmt is ExportFormat.CSV:
                writer.writerow([cell(v) for v in table.row(item.model_dump(mode="json"))])
            else:
                buffer.write(item.model_dump_json())
                buffer.write("\n")
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()  # a CSV header of an empty export


def export_stream(
    pages: AsyncIterator[Sequence[BaseModel]], fmt: ExportFormat, table: Table, *, name: str
) -> Response[Any]:
    """The streamed answer of an export: one chunk per page, as an attachment named `name.csv`/`.jsonl`."""
    media, suffix = (CSV, "csv") if fmt is ExportFormat.CSV else (NDJSON, "jsonl")
    return Stream(
        _chunks(pages, fmt, table),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.{suffix}"'},
    )


@dataclass
class ExportOperation(Operation):
    """Documents the export answers beside the JSON page: `text/csv` and `application/x-ndjson`."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            content = dict(ok.content or {})
            content[CSV] = OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.STRING,
                    description="A header row, then one row per matching item (`?format=csv`).",
                )
            )
            content[NDJSON] = OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.STRING,
                    description="One JSON object per line, the fields of the JSON items (`?format=jsonl`).",
                )
            )
            ok.content = content
