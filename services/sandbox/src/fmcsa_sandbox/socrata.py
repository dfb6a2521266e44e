"""Socrata imitation: `GET /resource/8mt8-2mdr.json` (SODA 2) with column filters, `$where`, `$select`,
`$order`, `$limit`, `$offset`, app-token auth, Socrata's error bodies and headers.

What a client may rely on (and what it must survive):
- Every value is a string; a null value's key is omitted; dates are `DD-MON-YY`; rows come in `:id` order
  unless `$order` says otherwise, and pages of one data version are stable. `:id` changes with each
  version (a new monthly run), as Socrata's probably does.
- `dot_number=<v>` is string equality: `0123` and `abc` match nothing (`[]`, not an error).
- Errors: another dataset id -> 404 `dataset.missing`; an unknown column (as a parameter, in `$select`,
  `$order` or `$where`) -> 400 `query.soql.no-such-column`; `$limit` above 50,000 -> 400 with a `code`
  body; a `$where` other than `column = 'text'` joined by AND -> 400 `query.compiler.malformed`; a number
  compared with a text column -> 400 `query.soql.type-mismatch`; another `$` parameter -> 400 malformed;
  a token other than the configured one -> 403 `permission_denied` (no token is served).
- Headers: `X-Socrata-RequestId`, `X-SODA2-Fields`, `X-SODA2-Types`, `Last-Modified` (the version's
  publication), `X-SODA2-Truth-Last-Modified`, `ETag` (`If-None-Match` gives 304).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from fmcsa_sandbox.data import (
    BASIC_BY_ID,
    VIOLATIONS_429_TWICE,
    ViolationRow,
    canonical_dot,
    head_rows,
    published_at,
    snapshot,
    socrata_date,
)
from fmcsa_sandbox.state import SandboxState, json_response, respond, too_many_requests

DATASET = "8mt8-2mdr"
INTERNAL_ID = "alpha.58302"  # Socrata's internal name of the dataset, as its error bodies show it
COLUMNS: tuple[str, ...] = (
    "unique_id", "insp_date", "dot_number", "viol_code", "basic_desc", "oos_indicator", "oos_weight",
    "severity_weight", "time_weight", "total_severity_wght", "section_desc", "group_desc", "viol_unit",
)  # fmt: skip
ROW_ID = ":id"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000
MEDIA_TYPE = "application/json;charset=utf-8"
SOFT_HYPHEN = "\u00ad"


@dataclass(frozen=True, slots=True)
class Query:
    """A validated SODA query: equality filters, output fields, sort keys, page."""

    filters: tuple[tuple[str, str], ...] = ()
    fields: tuple[str, ...] = COLUMNS
    order: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def dots(self) -> set[str]:
        return {value for column, value in self.filters if column == "dot_number"}


@dataclass(frozen=True, slots=True)
class SocrataError:
    status: int
    body: dict[str, Any]


def no_such_column(column: str, *, position: int = 1) -> SocrataError:
    return SocrataError(
        400,
        {
            "message": f"Query coordinator error: query.soql.no-such-column; No such column: {column}",
            "errorCode": "query.soql.no-such-column",
            "data": {"column": column, "dataset": INTERNAL_ID, "position": {"row": 1, "column": position}},
        },
    )


def malformed(soql: str, reason: str) -> SocrataError:
    return SocrataError(
        400,
        {
            "code": "query.compiler.malformed",
            "error": True,
            "message": f'Could not parse SoQL query "{soql}" at line 1 character {len(soql) + 1}: {reason}',
            "data": {"query": soql},
        },
    )


def type_mismatch(column: str, *, position: int) -> SocrataError:
    return SocrataError(
        400,
        {
            "message": f"Query coordinator error: query.soql.type-mismatch; Type mismatch for op $eq, is "
            f"text, number; position: {position}",
            "errorCode": "query.soql.type-mismatch",
            "data": {
                "name": "op$eq",
                "types": ["text", "number"],
                "dataset": INTERNAL_ID,
                "position": {"row": 1, "column": position},
                "column": column,
            },
        },
    )


def limit_exceeded(limit: int) -> SocrataError:
    soql = f"select * limit {limit}"
    return SocrataError(
        400,
        {
            "code": "query.execution.limit-exceeded",
            "error": True,
            "message": f"Invalid SoQL query: $limit {limit} is above the maximum of {MAX_LIMIT}",
            "data": {"query": soql},
        },
    )


def dataset_missing(dataset_id: str) -> SocrataError:
    return SocrataError(
        404, {"code": "dataset.missing", "error": True, "message": "Not found", "data": {"id": dataset_id}}
    )


PERMISSION_DENIED = SocrataError(
    403, {"code": "permission_denied", "error": True, "message": "Invalid app_token specified"}
)

_WHERE_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>:?[A-Za-z_][A-Za-z0-9_]*)|(?P<op>=))"
)


def _where(text: str) -> list[tuple[str, str]] | SocrataError:
    """`column = 'text'` clauses joined by AND (case-insensitive); anything else is malformed."""
    soql = f"select * where {text}"
    tokens: list[tuple[str, str, int]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        found = _WHERE_TOKEN.match(text, at)
        if found is None or found.lastgroup is None:
            return malformed(soql, f"Unexpected character at {at + 1}")
        tokens.append((found.lastgroup, found.group(found.lastgroup), found.start(found.lastgroup) + 1))
        at = found.end()
    clauses: list[tuple[str, str]] = []
    index = 0
    while True:
        part = tokens[index : index + 3]
        if len(part) < 3 or part[0][0] != "name" or part[1][0] != "op":
            return malformed(soql, "Expected an expression, but got end of input")
        (_, column, position), _, (kind, value, _) = part
        if column not in COLUMNS:
            return no_such_column(column, position=position + len("select * where "))
        if kind == "number":
            return type_mismatch(column, position=position + len("select * where "))
        if kind != "string":
            return malformed(soql, f"Expected a literal, got {value}")
        clauses.append((column, value[1:-1].replace("''", "'")))
        index += 3
        if index == len(tokens):
            return clauses
        if tokens[index][0] != "name" or tokens[index][1].lower() != "and":
            return malformed(soql, f"Expected AND, got {tokens[index][1]}")
        index += 1


def _fields(text: str) -> tuple[str, ...] | SocrataError:
    fields: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if name == "*":
            fields.extend(COLUMNS)
        elif name in (ROW_ID, ":*"):
            fields.append(ROW_ID)
        elif name in COLUMNS:
            fields.append(name)
        elif re.fullmatch(r":?[A-Za-z_][A-Za-z0-9_]*", name):
            return no_such_column(name, position=8)
        else:
            return malformed(f"select {text}", f"Unsupported selection {name!r}")
    return tuple(dict.fromkeys(fields))


def _order(text: str) -> tuple[tuple[str, bool], ...] | SocrataError:
    keys: list[tuple[str, bool]] = []
    for raw in text.split(","):
        words = raw.split()
        if not 1 <= len(words) <= 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            return malformed(f"select * order by {text}", f"Unsupported order {raw.strip()!r}")
        name = words[0]
        if name != ROW_ID and name not in COLUMNS:
            return no_such_column(name, position=19)
        keys.append((name, len(words) == 2 and words[1].upper() == "DESC"))
    return tuple(keys)


def _count(name: str, text: str) -> int | SocrataError:
    if not (text.isascii() and text.isdigit()):
        return malformed(f"select * {name[1:]} {text}", f"Expected a non-negative integer for {name}")
    return int(text)


def plan(params: list[tuple[str, str]]) -> Query | SocrataError:
    """Validate the query parameters (the app token already taken out) into a `Query`."""
    filters: list[tuple[str, str]] = []
    fields: tuple[str, ...] = COLUMNS
    order: tuple[tuple[str, bool], ...] = ()
    limit, offset = DEFAULT_LIMIT, 0
    for name, value in params:
        if name == "$$app_token":
            continue
        if not name.startswith("$"):
            if name not in COLUMNS:
                return no_such_column(name)
            filters.append((name, value))
            continue
        match name:
            case "$where":
                clauses = _where(value)
                if isinstance(clauses, SocrataError):
                    return clauses
                filters.extend(clauses)
            case "$select":
                selected = _fields(value)
                if isinstance(selected, SocrataError):
                    return selected
                fields = selected
            case "$order":
                keys = _order(value)
                if isinstance(keys, SocrataError):
                    return keys
                order = keys
            case "$limit":
                found = _count(name, value)
                if isinstance(found, SocrataError):
                    return found
                if found > MAX_LIMIT:
                    return limit_exceeded(found)
                limit = found
            case "$offset":
                found = _count(name, value)
                if isinstance(found, SocrataError):
                    return found
                offset = found
            case _:
                return malformed("select *", f"Unrecognized parameter {name}")
    return Query(filters=tuple(filters), fields=fields, order=order, limit=limit, offset=offset)


def row_values(row: ViolationRow) -> dict[str, str]:
    """A row as Socrata serves it: every value a string, null keys left out, in column order."""
    v = row.violation
    label = BASIC_BY_ID[v.kind.basic_id].label
    if v.soft_hyphen:
        label = f"{label[:-4]}{SOFT_HYPHEN}{label[-4:]}"
    values = {
        "unique_id": row.unique_id,
        "insp_date": socrata_date(row.insp_date),
        "dot_number": str(row.dot),
        "viol_code": v.kind.code,
        "basic_desc": label,
        "oos_indicator": "true" if v.oos else "false",
        "oos_weight": str(v.oos_weight),
        "severity_weight": str(v.kind.severity),
        "time_weight": str(row.time_weight),
        "total_severity_wght": str(v.total_severity),
        "section_desc": v.kind.section_desc,
        "group_desc": v.kind.group_desc,
        "viol_unit": v.unit,
    }
    if v.group_missing:
        del values["group_desc"]
    return values


def _rows_for(query: Query, version: int) -> list[dict[str, str]]:
    dots = query.dots()
    rows: tuple[ViolationRow, ...]
    if not dots:
        rows = head_rows(version)
    elif len(dots) > 1:
        rows = ()
    else:
        (text,) = dots
        dot = canonical_dot(text)
        found = snapshot(dot, version) if dot is not None and str(dot) == text else None
        rows = found.rows if found else ()
    served = [{ROW_ID: row.row_id, **row_values(row)} for row in rows]
    others = [(column, value) for column, value in query.filters if column != "dot_number"]
    if others:
        served = [r for r in served if all(r.get(column) == value for column, value in others)]
    for field, descending in reversed(query.order):
        served.sort(key=lambda r: r.get(field, ""), reverse=descending)
    return served


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    fields: tuple[str, ...]
    rows: int
    etag: str


@lru_cache(maxsize=2048)
def page(query: Query, version: int) -> Page:
    """One page of a query at a data version, encoded once (pages of the same version never change)."""
    selected = _rows_for(query, version)[query.offset : query.offset + query.limit]
    projected = [{f: r[f] for f in query.fields if f in r} for r in selected]
    # Socrata's own layout: one compact row per line, the comma leading the next line
    body = ("[" + "\n,".join(json.dumps(r, separators=(",", ":")) for r in projected) + "]\n").encode()
    digest = hashlib.blake2b(body, digest_size=6).hexdigest()
    etag = base64.b64encode(f"{INTERNAL_ID}_{version}_{digest}".encode()).decode().rstrip("=")
    return Page(body=body, fields=query.fields, rows=len(selected), etag=f'"{etag}"')


def soda_headers(page_: Page, version: int, request_id: str) -> dict[str, str]:
    modified = format_datetime(published_at(version), usegmt=True)
    return {
        "X-Socrata-RequestId": request_id,
        "X-SODA2-Fields": json.dumps(list(page_.fields)),
        "X-SODA2-Types": json.dumps(["meta_data" if f == ROW_ID else "text" for f in page_.fields]),
        "X-SODA2-Legacy-Types": "true",
        "Last-Modified": modified,
        "X-SODA2-Truth-Last-Modified": modified,
        "ETag": page_.etag,
    }


def _error(error: SocrataError, request_id: str) -> Response[bytes]:
    return json_response(
        error.body, error.status, headers={"X-Socrata-RequestId": request_id}, media_type=MEDIA_TYPE
    )


def socrata_router(state: SandboxState) -> Router:
    """The Socrata routes, under `/resource`."""

    @get("/{name:str}")
    async def resource(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        gate = await state.admit("violations", request.scope)
        if isinstance(gate, Response):
            return gate
        request_id = state.request_id()
        if name not in (DATASET, f"{DATASET}.json"):  # Socrata serves JSON without the suffix too
            return _error(dataset_missing(name.removesuffix(".json")), request_id)
        params = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        token = request.headers.get("x-app-token") or next((v for k, v in params if k == "$$app_token"), None)
        if token and token != state.app_token:
            return _error(PERMISSION_DENIED, request_id)
        query = plan(params)
        if isinstance(query, SocrataError):
            return _error(query, request_id)
        magic = query.dots() == {str(VIOLATIONS_429_TWICE)}
        if magic and state.refused_twice.refuse(query.offset):
            state.count_magic("violations")
            return too_many_requests("1")
        found = page(query, state.version)
        if magic:
            state.refused_twice.served(last_page=found.rows < query.limit)
        headers = soda_headers(found, state.version, request_id)
        if request.headers.get("if-none-match") == found.etag:
            return Response(b"", status_code=304, headers=headers)
        return respond(gate, found.body, media_type=MEDIA_TYPE, headers=headers)

    return Router(path="/resource", route_handlers=[resource])
