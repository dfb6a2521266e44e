"""QCMobile imitation: `GET /qc/services/carriers/{dot}` and its sub-resources (`/basics`, `/oos`,
`/authority`, `/cargo-carried`, `/operation-classification`, `/docket-numbers`), the searches
`/carriers/name/{name}?start=&size=` and `/carriers/docket-number/{docket}`, `webKey` auth.

The searches answer `content` as a list of `{_links, carrier}` (the carrier resource's own shape), at most
50 per answer, `[]` when nothing matches; they look through the sandbox's directory (`data.DIRECTORY_DOTS`).

Order of checks, as the real API appears to do: edge behaviour (rate limit, faults, magic DOTs), then the
`webKey` (missing: 404 "Must provide Webkey"; wrong: 404 "Webkey not found"), then the data. An unknown DOT
is 200 `{"content": null}` on the carrier and 200 `{"content": []}` below it. Every JSON answer but the
missing-key one carries `retrievalDate` with a `+0000` offset. Auth headers are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from fmcsa_sandbox.data import (
    AUTHORITY_429_TWICE,
    AUTHORITY_ALWAYS_500,
    AUTHORITY_HANG,
    AUTHORITY_MAINTENANCE,
    BASICS_RUN_DATE,
    CSA_ALWAYS_500,
    CSA_MAINTENANCE,
    OPERATION_DESC,
    PROPERTY_CARGO,
    SEARCH_PAGE_MAX,
    Snapshot,
    canonical_dot,
    oos_rate,
    run_date,
    search_docket,
    search_name,
    snapshot,
)
from fmcsa_sandbox.faults import MAINTENANCE_HTML
from fmcsa_sandbox.licensing import Licensing, licensing
from fmcsa_sandbox.state import JSON, Gate, SandboxState, respond, too_many_requests

Content = Callable[[Snapshot | None, str], Any]


def retrieval_date(now: float) -> str:
    """`2025-11-04T14:12:08.317+0000`: milliseconds and an offset without a colon."""
    moment = datetime.fromtimestamp(now, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def _href(url: str) -> dict[str, str]:
    return {"href": url}


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def carrier_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/carriers/{dot}`: `{_links, carrier}`, or None for an unknown DOT."""
    if found is None:
        return None
    p, c = found.profile, found.counts
    here = f"{base}/carriers/{p.dot}"
    return {
        "_links": {
            "basics": _href(f"{here}/basics"),
            "cargo carried": _href(f"{here}/cargo-carried"),
            "operation classification": _href(f"{here}/operation-classification"),
            "docket numbers": _href(f"{here}/docket-numbers"),
            "carrier active-For-hire authority": _href(f"{here}/authority"),
            "self": _href(here),
        },
        "carrier": {
            "allowedToOperate": _yn(p.allowed_to_operate),
            "bipdInsuranceOnFile": p.bipd_on_file,
            "bipdInsuranceRequired": "Y" if p.for_hire else "N",
            "bipdRequiredAmount": ("5000" if p.passenger else "750") if p.for_hire else "0",
            "bondInsuranceOnFile": p.bond_on_file,
            "bondInsuranceRequired": "N",
            "brokerAuthorityStatus": "N",
            "cargoInsuranceOnFile": p.cargo_on_file,
            "cargoInsuranceRequired": "u" if p.for_hire and not p.passenger else "N",
            "carrierOperation": {
                "carrierOperationCode": p.operation,
                "carrierOperationDesc": OPERATION_DESC[p.operation],
            },
            "censusTypeId": {"censusType": "C", "censusTypeDesc": "CARRIER", "censusTypeId": 1},
            "commonAuthorityStatus": ("A" if p.authority_active else "I") if p.for_hire else "N",
            "contractAuthorityStatus": "N",
            "crashTotal": c.crashes,
            "dbaName": p.dba_name,
            "dotNumber": p.dot,
            "driverInsp": c.driver,
            "driverOosInsp": c.driver_oos,
            "driverOosRate": oos_rate(c.driver_oos, c.driver),
            "driverOosRateNationalAverage": "5.51",
            "ein": p.ein,
            "fatalCrash": c.fatal,
            "hazmatInsp": c.hazmat,
            "hazmatOosInsp": c.hazmat_oos,
            "hazmatOosRate": oos_rate(c.hazmat_oos, c.hazmat),
            "hazmatOosRateNationalAverage": "4.5",
            "injCrash": c.injury,
            "isPassengerCarrier": _yn(p.passenger),
            "issScore": None,
            "legalName": p.legal_name,
            "mcs150Outdated": _yn(p.mcs150_outdated),
            "oosDate": p.oos_order.day.isoformat() if p.oos_order else None,
            "oosRateNationalAverageYear": "2009-2010",
            "phyCity": p.city,
            "phyCountry": "US",
            "phyState": p.state,
            "phyStreet": p.street,
            "phyZipcode": p.zipcode,
            "reviewDate": p.review_date.isoformat() if p.review_date else None,
            "reviewType": "C" if p.review_date else None,
            "safetyRating": p.safety_rating,
            "safetyRatingDate": p.rating_date.isoformat() if p.rating_date else None,
            "safetyReviewDate": p.review_date.isoformat() if p.review_date else None,
            "safetyReviewType": "C" if p.review_date else None,
            "snapshotDate": None,
            "statusCode": "A",
            "totalDrivers": p.drivers,
            "totalPowerUnits": p.power_units,
            "towawayCrash": c.tow,
            "vehicleInsp": c.vehicle,
            "vehicleOosInsp": c.vehicle_oos,
            "vehicleOosRate": oos_rate(c.vehicle_oos, c.vehicle),
            "vehicleOosRateNationalAverage": "20.72",
        },
    }


def _flag(value: bool | None) -> str:
    return "-1" if value is None else _yn(value)


def basics_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/basics`: five entries; `[]` for an unknown DOT or a carrier without inspections."""
    if found is None:
        return []
    dot = found.dot
    return [
        {
            "basic": {
                "basicsPercentile": "Not Public" if m.percentile is None else f"{m.percentile}%",
                "basicsRunDate": BASICS_RUN_DATE,
                "basicsType": {
                    "basicsCode": m.basic.code,
                    "basicsCodeMcmis": None,
                    "basicsId": m.basic.basic_id,
                    "basicsLongDesc": None,
                    "basicsShortDesc": m.basic.short_desc,
                },
                "basicsViolationThreshold": str(m.threshold),
                "exceededFMCSAInterventionThreshold": _flag(m.alert),
                "id": {"basicsId": m.basic.basic_id, "dotNumber": dot},
                "measureValue": m.measure,
                "onRoadPerformanceThresholdViolationIndicator": "Not Public"
                if m.alert is None
                else _yn(m.alert),
                "seriousViolationFromInvestigationPast12MonthIndicator": _yn(m.serious),
                "totalInspectionWithViolation": m.inspections_with_violation,
                "totalViolation": m.violations,
            },
            "dotNumber": None,
            "_links": {"self": _href(f"{base}/carriers/{dot}/basics/{m.basic.basic_id}")},
        }
        for m in found.basics
    ]


def oos_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/oos`: the carrier's out-of-service order, if it has one."""
    if found is None or found.profile.oos_order is None:
        return []
    order = found.profile.oos_order
    return [
        {
            "oos": {
                "dotNumber": found.dot,
                "id": order.order_id,
                "oosDate": order.day.isoformat(),
                "oosReason": order.reason,
                "oosReasonDescription": order.description,
            },
            "_links": {"self": _href(f"{base}/carriers/{found.dot}/oos/{order.order_id}")},
        }
    ]


def _licensing(found: Snapshot) -> Licensing:
    """The authority facts of a known carrier (QCMobile's paths do not depend on the day)."""
    facts = licensing(found.dot, found.version, run_date(found.version))
    assert facts is not None  # a snapshot's DOT is known
    return facts


def authority_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/authority`: one entry (the MC docket's) for a for-hire carrier, `[]` for a private one.
    Beside the recorded fields, the pending-grant and pending-revocation flags of each authority type
    (`commonAuthorityPendingStatus`, `commonAuthorityRevocationStatus`, ...): "Y"/"N", unverified upstream.
    """
    if found is None or found.profile.docket is None or found.profile.applicant_id is None:
        return []
    p = found.profile
    facts = _licensing(found)
    return [
        {
            "carrierAuthority": {
                "applicantID": p.applicant_id,
                "authority": "N",
                "authorizedForBroker": "N",
                "authorizedForHouseholdGoods": "N",
                "authorizedForPassenger": _yn(p.passenger),
                "authorizedForProperty": _yn(not p.passenger),
                "brokerAuthorityPendingStatus": facts.broker_flags.pending,
                "brokerAuthorityRevocationStatus": facts.broker_flags.revocation,
                "brokerAuthorityStatus": facts.broker,
                "commonAuthorityPendingStatus": facts.common_flags.pending,
                "commonAuthorityRevocationStatus": facts.common_flags.revocation,
                "commonAuthorityStatus": facts.common,
                "contractAuthorityPendingStatus": facts.contract_flags.pending,
                "contractAuthorityRevocationStatus": facts.contract_flags.revocation,
                "contractAuthorityStatus": facts.contract,
                "docketNumber": p.docket,
                "dotNumber": p.dot,
                "prefix": "MC",
            },
            "_links": {"self": _href(f"{base}/carriers/{p.dot}/authority/{p.applicant_id}")},
        }
    ]


def cargo_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/cargo-carried`: the classes SAFER's `cargo_carried` lists, with their ids."""
    if found is None:
        return []
    return [
        {
            "cargoClassDesc": cargo,
            "id": {"cargoClassId": PROPERTY_CARGO.index(cargo) + 1, "dotNumber": found.dot},
        }
        for cargo in found.profile.cargo
    ]


def operation_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/operation-classification` (unused by the sources; the carrier links it)."""
    if found is None:
        return []
    desc, class_id = ("Authorized For Hire", 1) if found.profile.for_hire else ("Private Property", 3)
    return [{"operationClassDesc": desc, "id": {"operationClassId": class_id, "dotNumber": found.dot}}]


def docket_content(found: Snapshot | None, base: str) -> Any:
    """`content` of `/docket-numbers`: the carrier's MC, MX and FF dockets, the MC docket first."""
    if found is None:
        return []
    return [
        {"docketNumber": d.number, "docketNumberId": d.docket_id, "dotNumber": found.dot, "prefix": d.prefix}
        for d in _licensing(found).dockets
    ]


AUTHORITY_CONTENT = frozenset({authority_content, docket_content, oos_content})


def _paging(query: dict[str, list[str]]) -> tuple[int, int]:
    """`start` (0-based, default 0) and `size` (default and at most 50); anything unreadable: the default."""

    def number(name: str, default: int) -> int:
        text = (query.get(name) or [""])[0]
        return int(text) if text.isascii() and text.isdigit() else default

    return number("start", 0), max(0, min(number("size", SEARCH_PAGE_MAX), SEARCH_PAGE_MAX))


@lru_cache(maxsize=1024)
def encoded_search(dots: tuple[int, ...], version: int, base: str) -> bytes:
    """A search's `content`: each carrier as `/carriers/{dot}` gives it."""
    return json.dumps(
        [carrier_content(snapshot(dot, version), base) for dot in dots], separators=(",", ":")
    ).encode()


@lru_cache(maxsize=16_384)
def encoded_content(content: Content, dot: int | None, version: int, base: str) -> bytes:
    """`content` as JSON, encoded once per (resource, DOT, version, host): only `retrievalDate` varies."""
    found = snapshot(dot, version) if dot is not None else None
    return json.dumps(content(found, base), separators=(",", ":")).encode()


def webkey_missing() -> Response[bytes]:
    return Response(b'{"content":"Must provide Webkey"}', status_code=404, media_type=JSON)


def webkey_not_found(now: float, root: str) -> dict[str, Any]:
    """The wrong-key answer (404), with the links the real API gives (`root` is `.../qc`)."""
    return {
        "content": "Webkey not found",
        "retrievalDate": retrieval_date(now),
        "_links": {
            "self": _href(root),
            "searchByName": _href(f"{root}/name/:name"),
            "lookupBydotNumber": _href(f"{root}/id/:dotNumber"),
        },
    }


ALWAYS_500 = frozenset({CSA_ALWAYS_500, AUTHORITY_ALWAYS_500})
MAINTENANCE = frozenset({CSA_MAINTENANCE, AUTHORITY_MAINTENANCE})


def source_of(content: Content, user_agent: str | None) -> str:
    """Which sandbox source a QCMobile request counts against (its limiter, latency, fault dice and
    counters): `/authority`, `/docket-numbers` and `/oos` are the authority source's; the carrier record is
    the authority source's when the `User-Agent` names it (`authority`, any case), else csa's, as is
    everything else (sandbox convention: both sources call the same host with the same key).
    """
    if content in AUTHORITY_CONTENT:
        return "authority"
    if content is carrier_content and "authority" in (user_agent or "").lower():
        return "authority"
    return "csa"


def _root(request: Request[Any, Any, Any]) -> str:
    host = request.headers.get("host") or "127.0.0.1"
    return f"http://{host}/qc"


def qcmobile_router(state: SandboxState) -> Router:
    """The QCMobile routes, under `/qc/services`."""

    def refused(request: Request[Any, Any, Any], gate: Gate) -> Response[bytes] | None:
        """The `webKey` check: missing -> 404 "Must provide Webkey", wrong -> 404 "Webkey not found"."""
        keys = parse_qs(request.scope["query_string"].decode("latin-1"), keep_blank_values=True).get("webKey")
        if not keys or not keys[0]:
            return webkey_missing()
        if keys[0] != state.web_key:
            body = json.dumps(webkey_not_found(state.clock(), _root(request)), separators=(",", ":")).encode()
            return respond(gate, body, status=404)
        return None

    def answer(gate: Gate, encoded: bytes) -> Response[bytes]:
        stamp = retrieval_date(state.clock()).encode()
        return respond(gate, b'{"content":' + encoded + b',"retrievalDate":"' + stamp + b'"}')

    async def serve(request: Request[Any, Any, Any], dot_text: str, content: Content) -> Response[bytes]:
        source = source_of(content, request.headers.get("user-agent"))
        gate = await state.admit(source, request.scope)
        if isinstance(gate, Response):
            return gate
        dot = canonical_dot(dot_text)
        if dot in ALWAYS_500:
            state.count_magic(source)
            return Response(b"{}", status_code=500, media_type=JSON)
        if dot in MAINTENANCE:
            state.count_magic(source)
            return Response(MAINTENANCE_HTML, status_code=200, media_type="text/html")
        if dot == AUTHORITY_HANG:
            state.count_magic(source)
            await state.hang()
        if (
            dot == AUTHORITY_429_TWICE
            and source == "authority"
            and state.authority_refused_twice.refuse(carrier_record=content is carrier_content)
        ):
            state.count_magic(source)
            return too_many_requests("1")
        if (refusal := refused(request, gate)) is not None:
            return refusal
        version = state.version_of(dot)
        if dot is not None and content is carrier_content:
            state.served_dots.add(dot)
        return answer(gate, encoded_content(content, dot, version, f"{_root(request)}/services"))

    async def search(request: Request[Any, Any, Any], found: tuple[int, ...]) -> Response[bytes]:
        gate = await state.admit("csa", request.scope)
        if isinstance(gate, Response):
            return gate
        if (refusal := refused(request, gate)) is not None:
            return refusal
        start, size = _paging(parse_qs(request.scope["query_string"].decode("latin-1")))
        dots = found[start : start + size]
        return answer(gate, encoded_search(dots, state.version, f"{_root(request)}/services"))

    @get("/carriers/name/{name:str}")
    async def by_name(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        return await search(request, search_name(name))

    @get("/carriers/docket-number/{docket:str}")
    async def by_docket(request: Request[Any, Any, Any], docket: FromPath[str]) -> Response[bytes]:
        return await search(request, search_docket(docket))

    @get("/carriers/{dot:str}")
    async def carrier(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, carrier_content)

    @get("/carriers/{dot:str}/basics")
    async def basics(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, basics_content)

    @get("/carriers/{dot:str}/oos")
    async def oos(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, oos_content)

    @get("/carriers/{dot:str}/authority")
    async def authority(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, authority_content)

    @get("/carriers/{dot:str}/cargo-carried")
    async def cargo_carried(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, cargo_content)

    @get("/carriers/{dot:str}/operation-classification")
    async def classification(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, operation_content)

    @get("/carriers/{dot:str}/docket-numbers")
    async def docket_numbers(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        return await serve(request, dot, docket_content)

    handlers = [
        carrier,
        basics,
        oos,
        authority,
        cargo_carried,
        classification,
        docket_numbers,
        by_name,
        by_docket,
    ]
    return Router(path="/qc/services", route_handlers=handlers)
