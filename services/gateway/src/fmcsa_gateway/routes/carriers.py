"""The carrier record: what the sources fetched about a carrier, its violations, search, the risk light.

`GET /api/carriers/{dot}` answers the record the status projector folded from the sources' newest
`SourceSynced` summaries (`fmcsa_status_view.record`), each group with its source, upstream as-of and
retrieved-at, and its risk light with the reasons (`fmcsa_status_view.risk`);
`GET /api/carriers/{dot}/violations` its violation rows, newest inspection first, filtered and paged;
`GET /api/carriers` finds records by DOT number, docket number or legal-name prefix, and by light. All
need a viewer and read only the status view (the gateway never reads a source's store). A DOT passes
`fmcsa_events.identifiers` at the edge (422 otherwise); `q` is 1-100 characters without control characters.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import QueryParameter
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from fmcsa_events.identifiers import Basic
from fmcsa_events.text import SAFE_TEXT_PATTERN, has_control_characters
from fmcsa_gateway.auth import VIEWER
from fmcsa_gateway.ports import Ports, PortsDep
from fmcsa_gateway.problems import FieldError, ProblemError, problem_specs
from fmcsa_gateway.routes.companies import Cursor, DotPath, Limit, edge_dot
from fmcsa_status_view.query import InvalidCursor
from fmcsa_status_view.risk import Light
from fmcsa_status_view.rows import CarrierRow, ViolationRow

Q_MAX = 100
"""The longest search text accepted (a legal name is at most 120 upstream; a prefix needs less)."""


ViolationBasic = Basic
"""The BASIC filter's vocabulary: the violations summary's keys (`fmcsa_events.identifiers.Basic`)."""


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Group(_Out):
    source: str = Field(description="The source these facts come from (its newest successful fetch).")
    upstream_as_of: datetime | None = Field(description="The date the upstream data describes.")
    retrieved_at: datetime | None = Field(description="When the source fetched it.")


class IdentityOut(_Group):
    legal_name: str | None
    dba_name: str | None
    address: str | None = Field(description="One line, as the source gives it.")
    phone: str | None = Field(
        description="SAFER's (the inspections source), whichever source gives the rest."
    )


class OperationOut(_Group):
    status: str | None = Field(description="The USDOT number's status from QCMobile: `active` or `inactive`.")
    operating_status: str | None = Field(
        description="SAFER's operating status text, e.g. `AUTHORIZED FOR Property`."
    )
    allowed_to_operate: bool | None
    out_of_service_date: str | None = Field(description="ISO date.")


class RatingOut(_Group):
    rating: str = Field(description="`satisfactory`, `conditional`, `unsatisfactory` or `not_rated`.")
    date: str | None = Field(description="ISO date of the rating.")


class OosGroupOut(_Out):
    inspections: int | None
    out_of_service: int | None
    rate: str | None = Field(description="Out-of-service percent, exact decimal text.")
    national_average: str | None = Field(description="The national average percent, exact decimal text.")


class OosRatesOut(_Group):
    driver: OosGroupOut
    vehicle: OosGroupOut
    hazmat: OosGroupOut


class CrashesOut(_Group):
    total: int | None
    fatal: int | None
    injury: int | None
    towaway: int | None


class BasicsOut(_Group):
    items: list[dict[str, Any]] = Field(
        description="Each BASIC as the csa source gives it: id, code, name, percentile (null while not "
        "public) and percentile_status, measure, threshold, alert and its reason, on_road_alert, "
        "serious_violation, inspections_with_violation, violations."
    )
    alerts: list[int] = Field(description="The ids of the BASICs in alert.")


class ViolationTotalsOut(_Group):
    total: int | None = Field(description="Violations in the 24-month window.")
    oos: int | None
    inspections: int | None = Field(description="Distinct inspections with a violation.")
    per_basic: dict[str, int]
    oos_per_basic: dict[str, int]
    latest_inspection_date: str | None
    listed: int | None = Field(description="Rows served by the violations list; null: the event listed none.")
    complete: bool | None = Field(
        description="Whether the listed rows are every row (an event older than pages listed the newest 500)."
    )


class OosOrderOut(_Out):
    date: str | None
    reason: str | None


class AuthorityOut(_Group):
    common: str | None = Field(
        description="`active`, `inactive`, `none`, `pending_grant`, `pending_revocation`."
    )
    contract: str | None
    broker: str | None
    dockets: list[str]
    oos_order: OosOrderOut | None


class InsuranceOut(_Group):
    bipd_required: int | None = Field(description="Whole US dollars.")
    bipd_on_file: int | None
    cargo_on_file: int | None
    bond_on_file: int | None
    filings: int | None
    next_cancellation: str | None = Field(description="The earliest cancellation date after the fetch, ISO.")


class RiskReasonOut(_Out):
    code: str = Field(description="e.g. `no_active_authority`, `basic_alert` (README: the risk light).")
    light: Light
    text: str = Field(description="For people.")


class RiskOut(_Out):
    light: Light
    reasons: list[RiskReasonOut]


class SourceSeenOut(_Out):
    request_id: str
    upstream_as_of: datetime | None
    retrieved_at: datetime | None


class CarrierRecord(_Out):
    """One carrier's record: the newest facts each source fetched; a group is null until a source that
    gives it has succeeded.
    """

    dot_number: str
    legal_name: str | None
    dba_name: str | None
    risk: RiskOut
    identity: IdentityOut | None
    operation: OperationOut | None
    safety_rating: RatingOut | None
    oos_rates: OosRatesOut | None
    crashes: CrashesOut | None
    basics: BasicsOut | None
    violations: ViolationTotalsOut | None
    authority: AuthorityOut | None
    insurance: InsuranceOut | None
    sources: dict[str, SourceSeenOut] = Field(description="Each succeeded source's newest success.")

    @classmethod
    def of(cls, row: CarrierRow) -> CarrierRecord:
        return cls.model_validate(
            {
                "dot_number": row.dot,
                "legal_name": row.legal_name,
                "dba_name": row.dba_name,
                "risk": {"light": row.risk, "reasons": row.risk_reasons or []},
                "identity": row.identity,
                "operation": row.operation,
                "safety_rating": row.safety_rating,
                "oos_rates": row.oos_rates,
                "crashes": row.crashes,
                "basics": row.basics,
                "violations": row.violations,
                "authority": row.authority,
                "insurance": row.insurance,
                "sources": row.sources or {},
            }
        )


class CarrierItem(_Out):
    dot_number: str
    legal_name: str | None
    dba_name: str | None
    dockets: list[str]
    allowed_to_operate: bool | None
    safety_rating: str | None
    risk: RiskOut

    @classmethod
    def of(cls, row: CarrierRow) -> CarrierItem:
        return cls.model_validate(
            {
                "dot_number": row.dot,
                "legal_name": row.legal_name,
                "dba_name": row.dba_name,
                "dockets": (row.authority or {}).get("dockets") or [],
                "allowed_to_operate": (row.operation or {}).get("allowed_to_operate"),
                "safety_rating": (row.safety_rating or {}).get("rating"),
                "risk": {"light": row.risk, "reasons": row.risk_reasons or []},
            }
        )


class CarrierPage(_Out):
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")
    items: list[CarrierItem]


class ViolationOut(_Out):
    inspection: str = Field(description="The inspection's id upstream (`unique_id`).")
    code: str
    unit: str = Field(description="`1` main unit, `2` secondary, `D` driver, `C` co-driver.")
    ordinal: int
    inspected_on: date
    basic: str | None = Field(description="A BASIC key; null for a label the source did not know.")
    oos: bool
    severity: int | None
    group: str | None = Field(validation_alias=AliasChoices("group", "group_name"))
    description: str | None

    @classmethod
    def of(cls, row: ViolationRow) -> ViolationOut:
        return cls.model_validate(row, from_attributes=True)


class ViolationPage(_Out):
    dot_number: str
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")
    complete: bool | None = Field(
        description="Whether the listed rows are all the carrier's rows (null: the summary listed none)."
    )
    items: list[ViolationOut]


def _empty(dot: str) -> CarrierRow:
    """The record of a known company no source has succeeded for yet: every group null, light unknown."""
    return CarrierRow(
        dot=dot, risk=Light.UNKNOWN.value, risk_reasons=[
            {"code": "no_data", "light": "unknown", "text": "No fact about this carrier is known yet."}
        ]
    )  # fmt: skip


async def record_of(ports: Ports, dot: str) -> CarrierRow:
    """The record, an empty one for a known company without any success, a 404 problem otherwise."""
    number = edge_dot(dot)
    row = await ports.view.carrier(number)
    if row is not None:
        return row
    if await ports.view.company_status(number) is None:
        raise ProblemError(404, f"no carrier {number} is known")
    return _empty(number)


def _bad_cursor(error: InvalidCursor) -> ProblemError:
    return ProblemError(422, str(error), errors=[FieldError(field="query.cursor", reason=str(error))])


class CarriersController(Controller):
    path = "/api/carriers"
    tags = ("carriers",)

    @get("/{dot:str}", guards=[VIEWER], responses=problem_specs(401, 404, 422))
    async def carrier(self, ports: PortsDep, dot: DotPath) -> CarrierRecord:
        """A carrier's record: identity, operation, safety rating, OOS rates beside the national averages,
        crashes, BASICs, violation totals, authority and insurance, each group with its source, upstream
        as-of and retrieved-at, and its risk light with the reasons. A known company no source has
        succeeded for yet answers its empty record (light `unknown`); 404 for a DOT no event named.
        """
        return CarrierRecord.of(await record_of(ports, dot))

    @get("/{dot:str}/violations", guards=[VIEWER], responses=problem_specs(401, 404, 422))
    async def violations(
        self,
        ports: PortsDep,
        dot: DotPath,
        basic: Annotated[ViolationBasic | None, QueryParameter(description="Only this BASIC.")] = None,
        oos: Annotated[
            bool | None, QueryParameter(description="Only out-of-service (or only other) rows.")
        ] = None,
        date_from: Annotated[
            date | None, QueryParameter(name="from", description="Inspected on or after this date.")
        ] = None,
        date_to: Annotated[
            date | None, QueryParameter(name="to", description="Inspected on or before this date.")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ViolationPage:
        """A carrier's violation rows, newest inspection first, as its newest violations fetch listed them
        (every row, paged past the first 500 by the source; `complete` says whether that is all, false for
        an older fetch that listed its newest 500). 404 for a DOT no event named.
        """
        row = await record_of(ports, dot)
        try:
            page = await ports.view.carrier_violations(
                row.dot,
                basic=None if basic is None else basic.value,
                oos=oos,
                since=date_from,
                until=date_to,
                limit=limit,
                cursor=cursor,
            )
        except InvalidCursor as error:
            raise _bad_cursor(error) from None
        totals = row.violations or {}
        return ViolationPage(
            dot_number=row.dot,
            limit=limit,
            next_cursor=page.next_cursor,
            complete=totals.get("complete"),
            items=[ViolationOut.of(v) for v in page.items],
        )

    @get("/", guards=[VIEWER], responses=problem_specs(401, 422))
    async def search(
        self,
        ports: PortsDep,
        q: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=Q_MAX,
                description="A DOT number, a docket number (`MC-123456`, any case or separator) or the "
                "start of the legal name (any case); a carrier matching any of them is listed. "
                "Blank: every carrier.",
                schema_extra={"pattern": SAFE_TEXT_PATTERN},
            ),
        ] = None,
        risk: Annotated[Light | None, QueryParameter(description="Only carriers with this light.")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> CarrierPage:
        """Carriers with a record (a source has succeeded for them), by DOT number, with their risk light."""
        if q is not None and (len(q) > Q_MAX or has_control_characters(q)):
            reason = f"at most {Q_MAX} characters, no control character"
            raise ProblemError(
                422, f"q must be {reason}", errors=[FieldError(field="query.q", reason=reason)]
            )
        try:
            page = await ports.view.search_carriers(
                q=q if q and q.strip() else None,
                risk=None if risk is None else risk.value,
                limit=limit,
                cursor=cursor,
            )
        except InvalidCursor as error:
            raise _bad_cursor(error) from None
        return CarrierPage(
            limit=limit, next_cursor=page.next_cursor, items=[CarrierItem.of(c) for c in page.items]
        )
