"""Socrata imitation: the SODA 2 resource `GET /resource/8mt8-2mdr.json` (and `.csv`) with SoQL, and the
dataset's metadata `GET /api/views/8mt8-2mdr.json`, with app-token auth, Socrata's error bodies and headers.

What a client may rely on (and what it must survive):
- Every value is a string; a null value's key is omitted; dates are `DD-MON-YY`; rows come in `:id` order
  unless `$order` says otherwise, and pages of one data version are stable. `:id` changes with each
  version (a new monthly run), as Socrata's probably does; so do `:created_at` and `:updated_at` (the
  run's publication), which appear only when asked for (`$select=:*,*`, `$select=:id,...` or
  `$$exclude_system_fields=false`).
- SoQL (`soql.py`): `$select` (expressions, `count(*)`, aliases), `$where`, `$group`, `$having`,
  `$order`, `$limit` (default 1000, at most 50,000), `$offset`, or one whole `$query` statement; and
  column parameters (`dot_number=<v>`, string equality: `0123` and `abc` match nothing, `[]`, not an
  error). Every dataset column is text, as upstream: text compares as text.
- Errors: another dataset id -> 404 `dataset.missing`; a statement that does not parse -> 400
  `query.compiler.malformed` naming line and character; an unknown column, a type mismatch, a column
  outside the GROUP BY... -> 400 `query.soql.*` with `data.position` (row, column) of the offending token
  in the statement the parameters make (`select <$select> where <$where> ...`); `$limit` above 50,000 ->
  400 with a `code` body; a token other than the configured one -> 403 `permission_denied`.
- Headers: `X-Socrata-RequestId`, `X-SODA2-Fields`, `X-SODA2-Types`, `Last-Modified` (the version's
  publication), `X-SODA2-Truth-Last-Modified`, `ETag` (`If-None-Match` gives 304); the body gzipped when
  `Accept-Encoding` allows gzip.
- The four daily difference datasets of FMCSA's Motus system (`DAILY_DIFFERENCES`: AuthHist `dm5j-zc6c`,
  Insur `x96h-evps`, Carrier `nakq-58th`, RevokeSuspend `e67p-xyd5`) list the carriers the latest bump
  changed (a full bump: every carrier QCMobile has served), their `rowsUpdatedAt` the bump's time; no ETag.
- Which rows a query reads: those of the DOTs its WHERE pins down (`dot_number = '..'`, `IN (..)`, joined
  by AND / OR); a query that pins none reads the "first rows of the dataset" (`data.HEAD_DOTS`).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from fmcsa_sandbox import soql
from fmcsa_sandbox.data import (
    AUTHORITY_429_TWICE,
    AUTHORITY_ALWAYS_500,
    AUTHORITY_HANG,
    BASIC_BY_ID,
    HEAD_DOTS,
    VIOLATIONS_429_TWICE,
    VIOLATIONS_EMPTY_EVERY_OTHER,
    ViolationRow,
    canonical_dot,
    head_rows,
    mdy,
    published_at,
    row_id,
    run_date,
    snapshot,
    socrata_date,
    stable_seed,
)
from fmcsa_sandbox.faults import Fault, truncate
from fmcsa_sandbox.licensing import Filing, licensing
from fmcsa_sandbox.state import JSON, SandboxState, json_response, too_many_requests

DATASET = "8mt8-2mdr"
INTERNAL_ID = "alpha.58302"  # Socrata's internal name of the dataset, as its error bodies show it
COLUMNS: tuple[str, ...] = (
    "unique_id", "insp_date", "dot_number", "viol_code", "basic_desc", "oos_indicator", "oos_weight",
    "severity_weight", "time_weight", "total_severity_wght", "section_desc", "group_desc", "viol_unit",
)  # fmt: skip
DISPLAY_NAMES: tuple[str, ...] = (
    "Unique_ID", "Insp_Date", "DOT_Number", "Viol_Code", "BASIC_Desc", "OOS_Indicator", "OOS_Weight",
    "Severity_Weight", "Time_Weight", "Total_Severity_Wght", "Section_Desc", "Group_Desc", "Viol_Unit",
)  # fmt: skip
INSURANCE_DATASET = "qh9u-swkp"
INSURANCE_INTERNAL_ID = "alpha.61447"  # invented: the real one was never recorded
INSURANCE_COLUMNS: tuple[str, ...] = (
    "docket_number", "dot_number", "ins_form_code", "mod_col_1", "ins_type_desc", "name_company", "policy_no",
    "trans_date", "underl_lim_amount", "max_cov_amount", "effective_date", "cancl_effective_date",
)  # fmt: skip
INSURANCE_DISPLAY_NAMES = INSURANCE_COLUMNS  # the real metadata was never recorded
ROW_ID, CREATED_AT, UPDATED_AT = ":id", ":created_at", ":updated_at"
SYSTEM_FIELDS: tuple[str, ...] = (ROW_ID, CREATED_AT, UPDATED_AT)


def field_types(columns: Sequence[str]) -> Mapping[str, str]:
    """Every column text (as in both real datasets), and the system fields."""
    system = {ROW_ID: soql.TEXT, CREATED_AT: soql.TIMESTAMP, UPDATED_AT: soql.TIMESTAMP}
    return {**dict.fromkeys(columns, soql.TEXT), **system}


FIELD_TYPES: Mapping[str, str] = field_types(COLUMNS)
SOQL_PARAMETERS = {"$select", "$where", "$group", "$having", "$order", "$limit", "$offset"}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000
MEDIA_TYPE = "application/json;charset=utf-8"
CSV_MEDIA_TYPE = "text/csv;charset=utf-8"
SOFT_HYPHEN = "\u00ad"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class SocrataError:
    status: int
    body: dict[str, Any]


def soql_error(error: soql.SoqlError, statement: str, internal_id: str = INTERNAL_ID) -> SocrataError:
    """Socrata's two 400 shapes: a parse error names the query; the others name the position."""
    if error.code == "query.compiler.malformed":
        return SocrataError(
            400, {"code": error.code, "error": True, "message": error.message, "data": {"query": statement}}
        )
    return SocrataError(
        400,
        {
            "message": f"Query coordinator error: {error.code}; {error.message}",
            "errorCode": error.code,
            "data": {
                **error.data,
                "dataset": internal_id,
                "position": {"row": error.position.row, "column": error.position.column},
            },
        },
    )


def malformed(statement: str, reason: str) -> SocrataError:
    """A parse error that points at the end of `statement` (for parameters refused before parsing)."""
    at = soql.Position(1, len(statement.rstrip()) + 1)
    message = f'Could not parse SoQL query "{statement}" at line 1 character {at.column}: {reason}'
    return soql_error(soql.SoqlError("query.compiler.malformed", message, at), statement)


def no_such_column(column: str) -> SocrataError:
    """A parameter named like no column (and not even like a name): nothing to point at but the start."""
    error = soql.SoqlError("query.soql.no-such-column", f"No such column: {column}", soql.Position(1, 1))
    error.data["column"] = column
    return soql_error(error, "")


def limit_exceeded(limit: int) -> SocrataError:
    return SocrataError(
        400,
        {
            "code": "query.execution.limit-exceeded",
            "error": True,
            "message": f"Invalid SoQL query: $limit {limit} is above the maximum of {MAX_LIMIT}",
            "data": {"query": f"select * limit {limit}"},
        },
    )


def dataset_missing(dataset_id: str) -> SocrataError:
    return SocrataError(
        404, {"code": "dataset.missing", "error": True, "message": "Not found", "data": {"id": dataset_id}}
    )


def view_missing(view_id: str) -> SocrataError:
    """The views API's 404 (sandbox convention: its body was never recorded)."""
    return SocrataError(
        404, {"code": "not_found", "error": True, "message": f"Cannot find view with id {view_id}"}
    )


PERMISSION_DENIED = SocrataError(
    403, {"code": "permission_denied", "error": True, "message": "Invalid app_token specified"}
)


# --- datasets and their rows -----------------------------------------------------------------------------

SourceRow = dict[str, soql.Value]
RowSource = Callable[[frozenset[str] | None, int, date | None], list[SourceRow]]
"""(the `dot_number` texts a query pins, or None; the data version; the day, for rows that depend on it) ->
the rows it reads, system fields included, in `:id` order."""


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """One imitated dataset; compared and hashed by identity (there are two, module constants)."""

    id: str
    internal_id: str
    source: str  # the sandbox source its requests count against
    name: str
    description: str
    row_label: str
    columns: tuple[str, ...]
    display_names: tuple[str, ...]
    rows: RowSource
    dated: bool = False  # its rows depend on the day (`today`), not only on the version
    difference: bool = False  # a daily difference: its rows come from the sandbox's state, not the version

    @property
    def types(self) -> Mapping[str, str]:
        return _TYPES[self.id]


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


def _violation_rows(dots: frozenset[str] | None, version: int, today: date | None = None) -> list[SourceRow]:
    rows: Sequence[ViolationRow]
    if dots is None:
        rows = head_rows(version)
    else:
        found = [snapshot(dot, version) for text in sorted(dots) if (dot := canonical_dot(text)) is not None]
        rows = sorted((row for s in found if s is not None for row in s.rows), key=lambda r: r.row_id)
    published = published_at(version)
    return [
        {ROW_ID: row.row_id, CREATED_AT: published, UPDATED_AT: published, **row_values(row)} for row in rows
    ]


def filing_values(dot: int, filing: Filing) -> dict[str, str]:
    """An insurance filing as the dataset serves it: text, the DOT zero-padded to 8 digits, dates
    `MM/DD/YYYY`, amounts in thousands of dollars; no `cancl_effective_date` key when not cancelled.
    """
    values = {
        "docket_number": filing.docket,
        "dot_number": f"{dot:08d}",
        "ins_form_code": filing.form,
        "mod_col_1": f"{filing.kind}/{filing.layer}" if filing.layer else filing.kind,
        "ins_type_desc": filing.kind,
        "name_company": filing.insurer,
        "policy_no": filing.policy,
        "trans_date": mdy(filing.trans_date) or "",
        "underl_lim_amount": str(filing.underlying),
        "max_cov_amount": str(filing.max_coverage),
        "effective_date": mdy(filing.effective) or "",
    }
    if filing.cancelled is not None:
        values["cancl_effective_date"] = mdy(filing.cancelled) or ""
    return values


def _filing_row_id(dot: int, filing: Filing) -> str:
    return row_id(stable_seed(dot, filing.kind, filing.policy, "insurance-row"))


def _insurance_rows(dots: frozenset[str] | None, version: int, today: date | None = None) -> list[SourceRow]:
    day = today or run_date(version)
    texts = sorted(dots) if dots is not None else [f"{dot:08d}" for dot in HEAD_DOTS]
    facts = [licensing(dot, version, day) for text in texts if (dot := canonical_dot(text)) is not None]
    published = published_at(version)
    rows: list[SourceRow] = [
        {
            ROW_ID: _filing_row_id(f.dot, filing),
            CREATED_AT: published,
            UPDATED_AT: published,
            **filing_values(f.dot, filing),
        }
        for f in facts
        if f is not None
        for filing in f.filings
    ]
    return sorted(rows, key=lambda row: str(row[ROW_ID]))


VIOLATIONS = Dataset(
    id=DATASET,
    internal_id=INTERNAL_ID,
    source="violations",
    name="SMS Input - Violation",
    description="Violations from roadside inspections of the last 24 months, as the monthly Safety "
    "Measurement System (SMS) run uses them.",
    row_label="Violation",
    columns=COLUMNS,
    display_names=DISPLAY_NAMES,
    rows=_violation_rows,
)
INSURANCE = Dataset(
    id=INSURANCE_DATASET,
    internal_id=INSURANCE_INTERNAL_ID,
    source="authority",
    name="ActPendInsur - All With History",
    description="Active and pending insurance filings of carriers, brokers and freight forwarders "
    "(FMCSA Licensing and Insurance).",
    row_label="Insurance filing",
    columns=INSURANCE_COLUMNS,
    display_names=INSURANCE_DISPLAY_NAMES,
    rows=_insurance_rows,
    dated=True,
)


# --- the daily difference datasets (FMCSA's Motus system, since May 2026) --------------------------------
# Each holds only the rows new or changed in the latest daily update. Their ids and columns come from public
# code that reads them, not from FMCSA documentation (unverified, as are the values below: docket and
# status spellings follow the insurance dataset's and QCMobile's). Here, the carriers the latest bump
# changed (`SandboxState.difference_dots`), each in the datasets its change plausibly touches: every one in
# Carrier, those with a docket in AuthHist, with filings in Insur, with a pending revocation in
# RevokeSuspend. `rowsUpdatedAt` is the bump's time (`SandboxState.difference_published`).

AUTH_HISTORY_DIFFERENCE = "dm5j-zc6c"
INSURANCE_DIFFERENCE = "x96h-evps"
CARRIER_DIFFERENCE = "nakq-58th"
REVOKE_SUSPEND_DIFFERENCE = "e67p-xyd5"


def _difference_values(dataset_id: str, dot: int, version: int, today: date) -> list[dict[str, str]]:
    if dataset_id in BULK_FILES:
        return _bulk_values(dataset_id, dot, version, today)
    facts = licensing(dot, version, today)
    if facts is None:
        return []
    docket = {"docket_number": facts.dockets[0].text} if facts.dockets else {}
    auth = {
        "op_auth_type": "COMMON",
        "op_auth_status": {"A": "ACTIVE", "I": "INACTIVE"}.get(facts.common, "NONE"),
    }
    head = {"usdot_number": str(dot), **docket}
    match dataset_id:
        case "nakq-58th":
            return [{**head, **auth}]
        case "dm5j-zc6c":
            changed = run_date(version).strftime("%Y%m%d")
            return [{**head, **auth, "status_change_date": changed}] if docket else []
        case "x96h-evps":
            return [
                {
                    **head,
                    "policy_no": f.policy,
                    "effective_date": mdy(f.effective) or "",
                    "insurance_company_name": f.insurer,
                    "max_cov_amount": str(f.max_coverage),
                }
                for f in facts.filings
            ]
        case _:
            if facts.common_flags.revocation != "Y":
                return []
            served = mdy(run_date(version)) or ""
            return [
                {
                    **head,
                    "op_auth_type": "COMMON",
                    "order1_serve_date": served,
                    "order1_effective_date": served,
                }
            ]


def _bulk_values(dataset_id: str, dot: int, version: int, today: date) -> list[dict[str, str]]:
    if dataset_id == CRASH_FILE:  # no crash: the Crash File is queried and lists nothing
        return []
    inspection = str(stable_seed(dataset_id, dot, version) % 10**9)  # a new inspection, today
    return [{"inspection_id": inspection, "insp_date": f"{today:%Y%m%d}", "dot_number": str(dot)}]


def difference_rows(
    dataset: Dataset,
    dots: frozenset[int],
    version_of: Callable[[int], int],
    today: date,
    updated: datetime | None = None,
) -> list[SourceRow]:
    """The rows of a daily difference dataset listing `dots` (each at the version it is served at); with
    `updated`, their `:updated_at` (the bulk files', which are queried by it).
    """
    rows: list[SourceRow] = []
    system = {} if updated is None else {CREATED_AT: updated, UPDATED_AT: updated}
    for dot in sorted(dots):
        for n, values in enumerate(_difference_values(dataset.id, dot, version_of(dot), today)):
            rows.append({ROW_ID: row_id(stable_seed(dataset.id, dot, n)), **system, **values})
    return sorted(rows, key=lambda row: str(row[ROW_ID]))


def _no_rows(dots: frozenset[str] | None, version: int, today: date | None = None) -> list[SourceRow]:
    return []  # a daily difference's rows come from the sandbox's state (`difference_rows`)


def _difference(dataset_id: str, name: str, columns: tuple[str, ...]) -> Dataset:
    return Dataset(
        id=dataset_id,
        internal_id=f"alpha.{stable_seed(dataset_id) % 90_000 + 10_000}",  # invented
        source="authority",
        name=f"Motus {name} Daily Difference",
        description=f"FMCSA Licensing and Insurance: the {name} rows new or changed in the latest daily "
        "update.",
        row_label=name,
        columns=columns,
        display_names=columns,
        rows=_no_rows,
        difference=True,
    )


DAILY_DIFFERENCES: tuple[Dataset, ...] = (
    _difference(
        AUTH_HISTORY_DIFFERENCE,
        "AuthHist",
        ("usdot_number", "docket_number", "op_auth_type", "op_auth_status", "status_change_date"),
    ),
    _difference(
        INSURANCE_DIFFERENCE,
        "Insur",
        (
            "usdot_number",
            "docket_number",
            "policy_no",
            "effective_date",
            "insurance_company_name",
            "max_cov_amount",
        ),
    ),
    _difference(
        CARRIER_DIFFERENCE, "Carrier", ("usdot_number", "docket_number", "op_auth_type", "op_auth_status")
    ),
    _difference(
        REVOKE_SUSPEND_DIFFERENCE,
        "RevokeSuspend",
        ("usdot_number", "docket_number", "op_auth_type", "order1_serve_date", "order1_effective_date"),
    ),
)

# --- DataHub's daily bulk files the inspections source's change gate reads -----------------------------
# Only what the gate asks: `$select=dot_number` with a `:updated_at` or a date filter, pages, metadata.
# Rows are the carriers the latest bump changed (`SandboxState.difference_dots`): one new inspection each,
# dated the bump's day, `:updated_at` and `rowsUpdatedAt` the bump's time; no crash (the Crash File is
# empty). Nothing ages out (the sandbox keeps no inspection history here). Every column text (upstream
# `dot_number` is a number column in the Vehicle Inspection File; the gate reads it either way).

INSPECTION_FILE = "fx4q-ay7w"
CRASH_FILE = "aayw-vxb3"
BULK_FILES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    INSPECTION_FILE: ("Vehicle Inspection File", ("inspection_id", "insp_date", "dot_number")),
    CRASH_FILE: ("Crash File", ("crash_id", "report_date", "dot_number")),
}


def _bulk(dataset_id: str) -> Dataset:
    name, columns = BULK_FILES[dataset_id]
    return Dataset(
        id=dataset_id,
        internal_id=f"alpha.{stable_seed(dataset_id) % 90_000 + 10_000}",  # invented
        source="inspections",
        name=name,
        description=f"FMCSA {name} (daily): one row per {name.split()[0].lower()}.",
        row_label=name.split()[0],
        columns=columns,
        display_names=columns,
        rows=_no_rows,
        difference=True,
    )


DATASETS: Mapping[str, Dataset] = {
    d.id: d for d in (VIOLATIONS, INSURANCE, *DAILY_DIFFERENCES, *(_bulk(i) for i in BULK_FILES))
}
_TYPES: Mapping[str, Mapping[str, str]] = {d.id: field_types(d.columns) for d in DATASETS.values()}


# --- planning: parameters -> one checked SoQL statement ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    expr: soql.Expr
    kind: str  # its SoQL type
    soda_type: str  # what X-SODA2-Types says


@dataclass(frozen=True, slots=True, eq=False)
class Query:
    """A checked SoQL query: the statement, what it outputs, and its page. Equal and hashed by `key` (the
    statement's text and flags), so the page cache looks it up without walking the syntax tree.
    """

    key: str
    statement: soql.Statement
    outputs: tuple[Output, ...]
    grouped: bool
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    dataset: Dataset = VIOLATIONS

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    def dots(self) -> frozenset[str] | None:
        """The `dot_number` values the WHERE pins rows to, or None when it pins none."""
        return pinned_dots(self.statement.where)


def assemble(params: Sequence[tuple[str, str]]) -> str | SocrataError:
    """The one SoQL statement that SODA's parameters stand for (`$query` as it is)."""
    given: dict[str, str] = {}
    filters: list[str] = []
    whole = None
    for name, value in params:
        if name in ("$$app_token", "$$exclude_system_fields"):
            continue
        if name == "$query":
            whole = value
        elif name in SOQL_PARAMETERS:
            given[name] = value
        elif name.startswith("$"):
            return malformed("select *", f"Unrecognized parameter {name}")
        elif not _IDENTIFIER.fullmatch(name):
            return no_such_column(name)
        else:
            filters.append(f"{name} = '{value.replace(chr(39), chr(39) * 2)}'")
    if whole is not None:
        if given or filters:
            return malformed(whole, "$query cannot be combined with other SoQL parameters")
        return whole
    where = " AND ".join(filters)
    if "$where" in given:
        where = f"({given['$where']}) AND {where}" if filters else given["$where"]
    parts = [f"select {given.get('$select', '*')}"]
    for clause, text in (
        ("where", where or None),
        ("group by", given.get("$group")),
        ("having", given.get("$having")),
        ("order by", given.get("$order")),
        ("limit", given.get("$limit")),
        ("offset", given.get("$offset")),
    ):
        if text is not None:
            parts.append(f"{clause} {text}")
    return " ".join(parts)


def _soda_type(expr: soql.Expr, kind: str) -> str:
    if isinstance(expr, soql.Column) and expr.name in SYSTEM_FIELDS:
        return "meta_data"  # legacy SODA 2 types, as X-SODA2-Legacy-Types says
    return {soql.TIMESTAMP: "calendar_date"}.get(kind, kind)


def check(
    statement: soql.Statement, *, system_fields: bool, dataset: Dataset = VIOLATIONS
) -> tuple[tuple[Output, ...], bool]:
    """The statement's outputs, and whether it aggregates; `soql.SoqlError` when Socrata would refuse it."""
    types, columns = dataset.types, dataset.columns
    checker = soql.Checker(types)
    items = [item for item in statement.select if isinstance(item, soql.Item)]
    grouped = bool(statement.group) or statement.having is not None
    grouped = grouped or any(soql.has_aggregate(item.expr) for item in items)
    if statement.where is not None:
        _boolean(checker.type_of(statement.where, aggregates=False), "where", statement.where.at)
    for key in statement.group:
        checker.type_of(key, aggregates=False)
    outputs: list[Output] = []
    for item in statement.select:
        if isinstance(item, soql.Star):
            if grouped:
                raise soql.not_in_group_bys(soql.Column("*", item.at))
            names = SYSTEM_FIELDS if item.system else (*SYSTEM_FIELDS, *columns) if system_fields else columns
            for name in names:
                column = soql.Column(name, item.at)
                outputs.append(Output(name, column, types[name], _soda_type(column, types[name])))
            continue
        kind = checker.type_of(item.expr, aggregates=True)
        if grouped and (loose := soql.ungrouped_column(item.expr, statement.group)) is not None:
            raise soql.not_in_group_bys(loose)
        name = item.alias or soql.default_name(item.expr)
        if name in (o.name for o in outputs):
            raise soql.SoqlError(
                "query.soql.duplicate-alias", f"Duplicate alias: {name}", item.at, alias=name
            )
        outputs.append(Output(name, item.expr, kind, _soda_type(item.expr, kind)))
    unique = {o.name: o for o in outputs}  # `*` twice or `:id, *` name a column once
    aliases = {o.name: o.kind for o in unique.values() if o.name not in types}
    scoped = soql.Checker(types, aliases)
    in_scope = (*statement.group, *(soql.Column(name, soql.Position(1, 1)) for name in aliases))
    if statement.having is not None:
        _boolean(scoped.type_of(statement.having, aggregates=True), "having", statement.having.at)
        if (loose := soql.ungrouped_column(statement.having, in_scope)) is not None:
            raise soql.not_in_group_bys(loose)
    for key, _ in statement.order:
        scoped.type_of(key, aggregates=grouped)
        if grouped and (loose := soql.ungrouped_column(key, in_scope)) is not None:
            raise soql.not_in_group_bys(loose)
    return tuple(unique.values()), grouped


def _boolean(kind: str, clause: str, at: soql.Position) -> None:
    if kind not in (soql.BOOLEAN, soql.NULL):
        raise soql.SoqlError(
            f"query.soql.non-boolean-{clause}", f"Non-boolean {clause}: {kind}", at, type=kind
        )


def plan(params: Sequence[tuple[str, str]], dataset: Dataset = VIOLATIONS) -> Query | SocrataError:
    """Validate the query parameters into a `Query` (the app token is checked before, and skipped here)."""
    return _plan(tuple((name, value) for name, value in params if name != "$$app_token"), dataset)


@lru_cache(maxsize=4096)
def _plan(params: tuple[tuple[str, str], ...], dataset: Dataset) -> Query | SocrataError:
    system_fields = False
    for name, value in params:
        if name == "$$exclude_system_fields":
            if value.lower() not in ("true", "false"):
                return malformed("select *", f"Invalid $$exclude_system_fields {value!r}")
            system_fields = value.lower() == "false"
    statement_text = assemble(params)
    if isinstance(statement_text, SocrataError):
        return statement_text
    try:
        statement = soql.parse(statement_text)
        outputs, grouped = check(statement, system_fields=system_fields, dataset=dataset)
    except soql.SoqlError as error:
        return soql_error(error, statement_text, dataset.internal_id)
    limit = DEFAULT_LIMIT if statement.limit is None else statement.limit
    if limit > MAX_LIMIT:
        return limit_exceeded(limit)
    key = f"{dataset.id}|{system_fields}|{statement_text}"
    offset = statement.offset or 0
    return Query(key, statement, outputs, grouped, limit=limit, offset=offset, dataset=dataset)


def _pin(text: str) -> str:
    """A pinned DOT text in one spelling (`02847193` and `2847193` pin the same carrier, whose rows the
    WHERE then filters as text), so that pins intersect; a text that names no DOT stays as it is.
    """
    dot = canonical_dot(text)
    return text if dot is None else str(dot)


def _dot_number(expr: soql.Expr, literal: soql.Expr) -> frozenset[str] | None:
    """`dot_number = 'text'`, or `dot_number::number = n` (whole): the DOT texts it pins, else None."""
    if not isinstance(literal, soql.Literal):
        return None
    value = literal.value
    match expr:
        case soql.Column(name="dot_number") if isinstance(value, str):
            return frozenset({_pin(value)})
        case soql.Cast(operand=soql.Column(name="dot_number"), type=soql.NUMBER) if isinstance(
            value, Decimal
        ):
            return frozenset({str(int(value))}) if value == int(value) and value >= 0 else None
    return None


def pinned_dots(where: soql.Expr | None) -> frozenset[str] | None:
    """The `dot_number` texts a WHERE restricts rows to (equality, the number cast's equality, IN, joined
    by AND / OR), or None.
    """
    match where:
        case soql.Compare(op="=", left=left, right=right) if (pinned := _dot_number(left, right)) is not None:
            return pinned
        case soql.Compare(op="=", left=left, right=right) if (pinned := _dot_number(right, left)) is not None:
            return pinned
        case soql.In(operand=soql.Column(name="dot_number"), items=items, negated=False):
            texts = [item.value for item in items if isinstance(item, soql.Literal)]
            if len(texts) == len(items) and all(isinstance(t, str) for t in texts):
                return frozenset(_pin(str(t)) for t in texts)
            return None
        case soql.Logic(op="and", left=left, right=right):
            a, b = pinned_dots(left), pinned_dots(right)
            return b if a is None else a if b is None else a & b
        case soql.Logic(op="or", left=left, right=right):
            a, b = pinned_dots(left), pinned_dots(right)
            return None if a is None or b is None else a | b
    return None


# --- execution --------------------------------------------------------------------------------------------


def _sort_key(value: soql.Value) -> tuple[bool, Any]:
    return value is None, value


def _execute(
    query: Query, version: int, today: date | None, ahead: frozenset[str] = frozenset()
) -> list[dict[str, soql.Value]]:
    dots = query.dots()
    if ahead and dots is not None:  # a partial bump: those carriers' rows one version ahead
        rows = query.dataset.rows(dots - ahead, version, today)
        rows += query.dataset.rows(ahead, version + 1, today)
        rows.sort(key=lambda row: str(row[ROW_ID]))
    else:
        rows = query.dataset.rows(dots, version, today)
    return select(query, rows)


def select(query: Query, rows: list[SourceRow]) -> list[dict[str, soql.Value]]:
    """A query's page of `rows` (the dataset's rows it reads, in `:id` order)."""
    statement = query.statement
    if statement.where is not None:
        rows = [row for row in rows if soql.evaluate(statement.where, row) is True]
    # each result: (the environment ORDER BY and HAVING see, the row's group)
    results: list[tuple[dict[str, soql.Value], Sequence[Mapping[str, soql.Value]]]]
    if query.grouped:
        groups: dict[tuple[Any, ...], list[dict[str, soql.Value]]] = {}
        for row in rows:
            groups.setdefault(tuple(soql.evaluate(k, row) for k in statement.group), []).append(row)
        if not statement.group and not groups:
            groups[()] = []  # an aggregate over no rows is still one row (`count` 0)
        results = []
        for members in groups.values():
            first = members[0] if members else {}
            outputs = {o.name: soql.evaluate(o.expr, first, members) for o in query.outputs}
            results.append(({**first, **outputs}, members))
        if statement.having is not None:
            results = [(env, g) for env, g in results if soql.evaluate(statement.having, env, g) is True]
    else:
        results = [
            ({**row, **{o.name: soql.evaluate(o.expr, row) for o in query.outputs}}, ()) for row in rows
        ]
    for key, descending in reversed(statement.order):
        results.sort(key=lambda pair: _sort_key(soql.evaluate(key, pair[0], pair[1])), reverse=descending)
    chosen = results[query.offset : query.offset + query.limit]
    return [{o.name: env[o.name] for o in query.outputs} for env, _ in chosen]


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    fields: tuple[str, ...]
    types: tuple[str, ...]
    rows: int
    etag: str


def _json(fields: Sequence[str], rows: Sequence[Mapping[str, soql.Value]]) -> bytes:
    served = [
        {name: text for name in fields if (text := soql.serialize(row.get(name))) is not None} for row in rows
    ]
    # Socrata's own layout: one compact row per line, the comma leading the next line
    return ("[" + "\n,".join(json.dumps(r, separators=(",", ":")) for r in served) + "]\n").encode()


def _csv(fields: Sequence[str], rows: Sequence[Mapping[str, soql.Value]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([soql.serialize(row.get(name)) or "" for name in fields])
    return out.getvalue().encode()


@lru_cache(maxsize=2048)
def page(
    query: Query,
    version: int,
    form: str = "json",
    today: date | None = None,
    ahead: frozenset[str] = frozenset(),
) -> Page:
    """One page of a query at a data version (and, for a dated dataset, a day) in `json` or `csv`, encoded
    once (pages never change); `ahead`: the DOTs it pins that a partial bump serves one version ahead.
    """
    rows = _execute(query, version, today, ahead)
    fields = query.fields
    body = _csv(fields, rows) if form == "csv" else _json(fields, rows)
    digest = hashlib.blake2b(body, digest_size=6).hexdigest()
    etag = base64.b64encode(f"{query.dataset.internal_id}_{version}_{digest}".encode()).decode().rstrip("=")
    types = tuple(o.soda_type for o in query.outputs)
    return Page(body=body, fields=fields, types=types, rows=len(rows), etag=f'"{etag}"')


@lru_cache(maxsize=512)
def gzipped(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6, mtime=0)


def accepts_gzip(header: str | None) -> bool:
    """Whether `Accept-Encoding` allows gzip (`gzip`, `*`, without `q=0`)."""
    for part in (header or "").lower().split(","):
        coding, _, rest = part.strip().partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            quality = rest.replace(" ", "").removeprefix("q=")
            try:
                return not rest or float(quality) > 0
            except ValueError:
                return False
    return False


def soda_headers(page_: Page, version: int, request_id: str) -> dict[str, str]:
    modified = format_datetime(published_at(version), usegmt=True)
    return {
        "X-Socrata-RequestId": request_id,
        "X-SODA2-Fields": json.dumps(list(page_.fields)),
        "X-SODA2-Types": json.dumps(list(page_.types)),
        "X-SODA2-Legacy-Types": "true",
        "Last-Modified": modified,
        "X-SODA2-Truth-Last-Modified": modified,
        "ETag": page_.etag,
    }


# --- metadata (`/api/views/{id}.json`) --------------------------------------------------------------------

CREATED_AT_EPOCH = int(datetime(2018, 3, 2, 15, 4, 11, tzinfo=UTC).timestamp())


def metadata(version: int, dataset: Dataset = VIOLATIONS, updated_at: int | None = None) -> dict[str, Any]:
    """The dataset's view metadata, as sodapy's `get_metadata` reads it; `rowsUpdatedAt` moves with a bump
    (`updated_at`, epoch seconds, instead of the version's publication when given).
    """
    updated = int(published_at(version).timestamp()) if updated_at is None else updated_at
    return {
        "id": dataset.id,
        "name": dataset.name,
        "assetType": "dataset",
        "attribution": "Federal Motor Carrier Safety Administration",
        "averageRating": 0,
        "category": "Trucking and Motorcoaches",
        "createdAt": CREATED_AT_EPOCH,
        "description": dataset.description,
        "displayType": "table",
        "hideFromCatalog": False,
        "hideFromDataJson": False,
        "indexUpdatedAt": updated,
        "newBackend": True,
        "numberOfComments": 0,
        "provenance": "official",
        "publicationDate": updated,
        "publicationStage": "published",
        "rowsUpdatedAt": updated,
        "rowsUpdatedBy": "fmcs-sms1",
        "tableId": int(dataset.internal_id.split(".")[1]),
        "totalTimesRated": 0,
        "viewLastModified": updated,
        "viewType": "tabular",
        "columns": [
            {
                "id": 400_000_001 + i,
                "name": display,
                "dataTypeName": "text",
                "description": "",
                "fieldName": name,
                "position": i + 1,
                "renderTypeName": "text",
                "tableColumnId": 90_000_001 + i,
                "format": {},
            }
            for i, (name, display) in enumerate(zip(dataset.columns, dataset.display_names, strict=True))
        ],
        "metadata": {
            "rdfSubject": "0",
            "rowLabel": dataset.row_label,
            "availableDisplayTypes": ["table", "fatrow"],
        },
        "owner": {"id": "fmcs-sms1", "displayName": "FMCSA", "type": "interactive"},
        "tags": ["sms", "violation", "fmcsa"] if dataset is VIOLATIONS else ["insurance", "l&i", "fmcsa"],
        **({"rowsUpdatedBy": "fmcs-motus"} if dataset.difference else {}),
        "flags": ["default", "restorable", "restorePossibleForType"],
    }


# --- routes -----------------------------------------------------------------------------------------------


def _error(error: SocrataError, request_id: str) -> Response[bytes]:
    return json_response(
        error.body, error.status, headers={"X-Socrata-RequestId": request_id}, media_type=MEDIA_TYPE
    )


def _form(name: str, accept: str | None) -> tuple[Dataset, str] | None:
    """The dataset, and `json` or `csv` by the suffix, else by `Accept`; None for another dataset or
    format.
    """
    stem, _, suffix = name.partition(".")
    dataset = DATASETS.get(stem)
    if dataset is None or suffix not in ("", "json", "csv"):
        return None
    return dataset, suffix or ("csv" if "text/csv" in (accept or "") else "json")


def socrata_router(state: SandboxState) -> Router:
    """The Socrata routes: `/resource/{id}` and `/api/views/{id}`."""

    def token_refused(request: Request[Any, Any, Any], params: list[tuple[str, str]]) -> bool:
        token = request.headers.get("x-app-token") or next((v for k, v in params if k == "$$app_token"), None)
        return bool(token) and token != state.app_token

    def send(
        request: Request[Any, Any, Any], gate: object, body: bytes, media: str, headers: dict[str, str]
    ) -> Response[bytes]:
        if gate is Fault.MALFORMED:
            body = truncate(body)  # cut before compressing: a cut-short JSON, as the faults promise
        if accepts_gzip(request.headers.get("accept-encoding")):
            body = gzipped(body)
            headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(body, status_code=200, media_type=media, headers=headers)

    async def magic(query: Query) -> Response[bytes] | None:
        """A magic DOT's edge behaviour, when the query pins exactly one (None: serve)."""
        pinned = query.dots()
        dot = canonical_dot(next(iter(pinned))) if pinned is not None and len(pinned) == 1 else None
        source = query.dataset.source
        if query.dataset is VIOLATIONS:
            if dot == VIOLATIONS_429_TWICE and state.refused_twice.refuse(query.offset):
                state.count_magic(source)
                return too_many_requests("1")
            return None
        if dot == AUTHORITY_ALWAYS_500:
            state.count_magic(source)
            return Response(b"{}", status_code=500, media_type=JSON)
        if dot == AUTHORITY_HANG:
            state.count_magic(source)
            await state.hang()
        if dot == AUTHORITY_429_TWICE and state.authority_refused_twice.refuse(carrier_record=False):
            state.count_magic(source)
            return too_many_requests("1")
        return None

    @get("/resource/{name:str}")
    async def resource(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        resolved = _form(name, request.headers.get("accept"))
        gate = await state.admit(resolved[0].source if resolved else "violations", request.scope)
        if isinstance(gate, Response):
            return gate
        request_id = state.request_id()
        if resolved is None:
            return _error(dataset_missing(name.rsplit(".", 1)[0]), request_id)
        dataset, form = resolved
        params = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if token_refused(request, params):
            return _error(PERMISSION_DENIED, request_id)
        query = plan(params, dataset)
        if isinstance(query, SocrataError):
            return _error(query, request_id)
        if (edge := await magic(query)) is not None:
            return edge
        if dataset.difference:
            day = datetime.fromtimestamp(state.clock(), UTC).date()
            published = datetime.fromtimestamp(state.difference_published, UTC)
            bulk = published if dataset.id in BULK_FILES else None
            rows = difference_rows(dataset, state.difference_dots, state.version_of, day, bulk)
            fields = query.fields
            body = _csv(fields, select(query, rows)) if form == "csv" else _json(fields, select(query, rows))
            updated = datetime.fromtimestamp(state.difference_published, UTC)
            headers = {
                "X-Socrata-RequestId": request_id,
                "X-SODA2-Fields": json.dumps(list(fields)),
                "X-SODA2-Types": json.dumps([o.soda_type for o in query.outputs]),
                "Last-Modified": format_datetime(updated, usegmt=True),
            }
            return send(request, gate, body, CSV_MEDIA_TYPE if form == "csv" else MEDIA_TYPE, headers)
        today = datetime.fromtimestamp(state.clock(), UTC).date() if dataset.dated else None
        pinned = query.dots()
        ahead = frozenset(d for d in pinned or () if canonical_dot(d) in state.ahead)
        found = page(query, state.version, form, today, ahead)
        if dataset is VIOLATIONS and query.dots() == frozenset({str(VIOLATIONS_429_TWICE)}):
            state.refused_twice.served(last_page=found.rows < query.limit)
        headers = soda_headers(found, state.published_version, request_id)
        if (
            dataset is VIOLATIONS
            and query.dots() == frozenset({str(VIOLATIONS_EMPTY_EVERY_OTHER)})
            and state.empty_every_other.empty(query.offset)
        ):
            state.count_magic(dataset.source)
            return send(request, gate, b"[]", MEDIA_TYPE, headers)
        if request.headers.get("if-none-match") == found.etag:
            return Response(b"", status_code=304, headers=headers)
        return send(request, gate, found.body, CSV_MEDIA_TYPE if form == "csv" else MEDIA_TYPE, headers)

    @get("/api/views/{name:str}")
    async def view(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        dataset = DATASETS.get(name.removesuffix(".json"))
        gate = await state.admit(dataset.source if dataset else "violations", request.scope)
        if isinstance(gate, Response):
            return gate
        request_id = state.request_id()
        if dataset is None:
            return _error(view_missing(name.removesuffix(".json")), request_id)
        params = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if token_refused(request, params):
            return _error(PERMISSION_DENIED, request_id)
        updated = state.difference_published if dataset.difference else None
        body = json.dumps(metadata(state.published_version, dataset, updated), separators=(",", ":")).encode()
        modified = (
            datetime.fromtimestamp(updated, UTC)
            if updated is not None
            else published_at(state.published_version)
        )
        headers = {"X-Socrata-RequestId": request_id, "Last-Modified": format_datetime(modified, usegmt=True)}
        return send(request, gate, body, MEDIA_TYPE, headers)

    return Router(path="/", route_handlers=[resource, view])
