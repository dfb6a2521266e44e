"""SaferWebAPI imitation: `GET /v2/usdot/snapshot/{dot}` with the `x-api-key` header.

Missing or wrong key -> 401 `{"message":"Unauthorized"}`; a lapsed key -> 403 `{"message":"Forbidden"}`;
an unknown DOT -> 404 `{"message":"USDOT number not found"}` (all sandbox conventions). A snapshot uses
one of the two US-block spellings per DOT, always the same one for that DOT: `us_inspections` with integer
counts, or `united_states_inspections` with counts as strings. Its counts equal the QCMobile carrier's.
DOT 99300001 hangs for `hang_s` before its answer.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from fmcsa_sandbox.data import (
    INSPECTIONS_HANG,
    OPERATION_DESC,
    RATING_WORDS,
    Snapshot,
    canonical_dot,
    mdy,
    percent,
    snapshot,
)
from fmcsa_sandbox.state import SandboxState, json_response, respond

SAFER_URL = (
    "https://safer.fmcsa.dot.gov/query.asp?searchtype=ANY&query_type=queryCarrierSnapshot&query_param=USDOT"
    "&query_string={dot}"
)
NATIONAL_AVERAGE = {"vehicle": "20.72%", "driver": "5.51%", "hazmat": "4.50%", "iep": "N/A"}


def _group(inspections: int, out_of_service: int, *, as_text: bool, national: str | None) -> dict[str, Any]:
    group: dict[str, Any] = {
        "inspections": str(inspections) if as_text else inspections,
        "out_of_service": str(out_of_service) if as_text else out_of_service,
        "out_of_service_percent": percent(out_of_service, inspections),
    }
    if national is not None:
        group["national_average"] = national
    return group


def snapshot_body(found: Snapshot) -> dict[str, Any]:
    """The SaferWebAPI snapshot of a carrier at its data version, in the recorded key order."""
    p, c = found.profile, found.counts
    as_text = p.us_block == "united_states_inspections"
    us = {
        "vehicle": _group(c.vehicle, c.vehicle_oos, as_text=as_text, national=NATIONAL_AVERAGE["vehicle"]),
        "driver": _group(c.driver, c.driver_oos, as_text=as_text, national=NATIONAL_AVERAGE["driver"]),
        "hazmat": _group(c.hazmat, c.hazmat_oos, as_text=as_text, national=NATIONAL_AVERAGE["hazmat"]),
        "iep": _group(0, 0, as_text=as_text, national=NATIONAL_AVERAGE["iep"]),
    }
    ca_vehicle, ca_vehicle_oos, ca_driver, ca_driver_oos = p.canada
    return {
        "entity_type": "CARRIER",
        "operating_status": p.operating_status,
        "out_of_service_date": mdy(p.oos_order.day) if p.oos_order else None,
        "legal_name": p.legal_name,
        "dba_name": p.dba_name or "",
        "physical_address": f"{p.street} {p.city}, {p.state}  {p.zipcode}",
        "mailing_address": p.mailing_address,
        "phone": p.phone,
        "usdot": str(p.dot),
        "state_carrier_id": "",
        "mc_mx_ff_numbers": f"MC-{p.docket}" if p.docket else None,
        "duns_number": None,
        "power_units": p.power_units,
        "drivers": p.drivers,
        "mcs_150_form_date": mdy(p.mcs150_date),
        "mcs_150_mileage_year": {"mileage": p.mcs150_mileage, "year": p.mcs150_year},
        "operation_classification": ["Auth. For Hire"] if p.for_hire else ["Private(Property)"],
        "carrier_operation": [OPERATION_DESC[p.operation]],
        "cargo_carried": list(p.cargo),
        p.us_block: us,
        "united_states_crashes": {"fatal": c.fatal, "injury": c.injury, "tow": c.tow, "total": c.crashes},
        "canada_inspections": {
            "vehicle": _group(ca_vehicle, ca_vehicle_oos, as_text=False, national=None),
            "driver": _group(ca_driver, ca_driver_oos, as_text=False, national=None),
        },
        "canada_crashes": {"fatal": 0, "injury": 0, "tow": 0, "total": 0},
        "safety_rating": RATING_WORDS[p.safety_rating] if p.safety_rating else None,
        "safety_rating_date": mdy(p.rating_date),
        "safety_review_date": mdy(p.review_date),
        "safety_type": "COMPLIANCE REVIEW" if p.review_date else None,
        "latest_update": mdy(found.latest_update),
        "url": SAFER_URL.format(dot=p.dot),
    }


@lru_cache(maxsize=16_384)
def encoded_snapshot(dot: int, version: int) -> bytes | None:
    """The snapshot body as JSON, encoded once per (DOT, version); None for an unknown DOT."""
    found = snapshot(dot, version)
    return None if found is None else json.dumps(snapshot_body(found), separators=(",", ":")).encode()


def saferweb_router(state: SandboxState) -> Router:
    """The SaferWebAPI routes, under `/v2`."""

    @get("/usdot/snapshot/{dot:str}")
    async def usdot_snapshot(request: Request[Any, Any, Any], dot: FromPath[str]) -> Response[bytes]:
        gate = await state.admit("inspections", request.scope)
        if isinstance(gate, Response):
            return gate
        number = canonical_dot(dot)
        if number == INSPECTIONS_HANG:
            state.count_magic("inspections")
            await state.hang()
        key = request.headers.get("x-api-key")
        if not key or (key != state.api_key and key not in state.lapsed_keys):
            return json_response({"message": "Unauthorized"}, 401)
        if key in state.lapsed_keys:
            return json_response({"message": "Forbidden"}, 403)
        body = encoded_snapshot(number, state.version_of(number)) if number is not None else None
        if body is None:
            return json_response({"message": "USDOT number not found"}, 404)
        return respond(gate, body)

    return Router(path="/v2", route_handlers=[usdot_snapshot])
