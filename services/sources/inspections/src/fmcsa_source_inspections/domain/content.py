"""A snapshot as JSON-ready content (what is stored and hashed), its content hash, and back.

Decimals are canonical decimal text (`fmcsa_events.decimals.text`), dates ISO; `snapshot_from_content`
reverses `snapshot_content` exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import JsonValue

from fmcsa_events import decimals
from fmcsa_source_inspections.domain.records import (
    CanadaInspections,
    Crashes,
    InspectionFigures,
    Mileage,
    SafetyRating,
    Snapshot,
    UsInspections,
)


def decimal_text(value: Decimal) -> str:
    """Canonical text of a Decimal: "16.670" and "16.67" both give "16.67"; never an exponent, never
    rounded (`fmcsa_events.decimals.text`).
    """
    return decimals.text(value)


def figures_content(figures: InspectionFigures | None) -> JsonValue:
    if figures is None:
        return None
    return {
        "inspections": figures.inspections,
        "out_of_service": figures.out_of_service,
        "out_of_service_percent": opt_decimal(figures.out_of_service_percent),
        "national_average": opt_decimal(figures.national_average),
    }


def crashes_content(crashes: Crashes | None) -> JsonValue:
    if crashes is None:
        return None
    return {"fatal": crashes.fatal, "injury": crashes.injury, "tow": crashes.tow, "total": crashes.total}


def opt_decimal(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def opt_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def us_content(block: UsInspections | None) -> JsonValue:
    if block is None:
        return None
    return {g: figures_content(getattr(block, g)) for g in ("vehicle", "driver", "hazmat", "iep")}


def canada_content(block: CanadaInspections | None) -> JsonValue:
    if block is None:
        return None
    return {g: figures_content(getattr(block, g)) for g in ("vehicle", "driver")}


def snapshot_content(snapshot: Snapshot) -> dict[str, JsonValue]:
    """The snapshot as JSON-ready values (Decimals as canonical strings, dates ISO); what is hashed
    and stored. `snapshot_from_content` reverses it exactly.
    """
    mileage = snapshot.mcs_150_mileage_year
    return {
        "usdot": snapshot.usdot,
        "legal_name": snapshot.legal_name,
        "dba_name": snapshot.dba_name,
        "entity_type": snapshot.entity_type,
        "operating_status": snapshot.operating_status,
        "out_of_service_date": opt_date(snapshot.out_of_service_date),
        "physical_address": snapshot.physical_address,
        "mailing_address": snapshot.mailing_address,
        "phone": snapshot.phone,
        "state_carrier_id": snapshot.state_carrier_id,
        "duns_number": snapshot.duns_number,
        "mc_mx_ff_numbers": snapshot.mc_mx_ff_numbers,
        "power_units": snapshot.power_units,
        "drivers": snapshot.drivers,
        "mcs_150_form_date": opt_date(snapshot.mcs_150_form_date),
        "mcs_150_mileage_year": None
        if mileage is None
        else {"mileage": mileage.mileage, "year": mileage.year},
        "operation_classification": list(snapshot.operation_classification),
        "carrier_operation": list(snapshot.carrier_operation),
        "cargo_carried": list(snapshot.cargo_carried),
        "us_inspections": us_content(snapshot.us_inspections),
        "canada_inspections": canada_content(snapshot.canada_inspections),
        "us_crashes": crashes_content(snapshot.us_crashes),
        "canada_crashes": crashes_content(snapshot.canada_crashes),
        "safety_rating": None if snapshot.safety_rating is None else snapshot.safety_rating.value,
        "safety_rating_date": opt_date(snapshot.safety_rating_date),
        "safety_review_date": opt_date(snapshot.safety_review_date),
        "safety_type": snapshot.safety_type,
        "latest_update": opt_date(snapshot.latest_update),
    }


def content_hash(snapshot: Snapshot) -> str:
    """SHA-256 (hex) of the normalized content: equal for snapshots that say the same thing, whatever
    spelling, number type or percent format the upstream used. `url` and fetch times are not in it.
    """
    canonical = json.dumps(
        snapshot_content(snapshot), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _from_figures(raw: Any) -> InspectionFigures | None:
    if raw is None:
        return None
    return InspectionFigures(
        inspections=raw["inspections"],
        out_of_service=raw["out_of_service"],
        out_of_service_percent=_to_decimal(raw["out_of_service_percent"]),
        national_average=_to_decimal(raw["national_average"]),
    )


def _to_decimal(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(raw)


def _to_date(raw: Any) -> date | None:
    return None if raw is None else date.fromisoformat(raw)


def _to_crashes(raw: Any) -> Crashes | None:
    return None if raw is None else Crashes(raw["fatal"], raw["injury"], raw["tow"], raw["total"])


def snapshot_from_content(content: Mapping[str, Any]) -> Snapshot:
    """Rebuild a Snapshot from `snapshot_content` output (as stored); raises KeyError/ValueError on
    anything else.
    """
    us, canada, mileage = (
        content["us_inspections"],
        content["canada_inspections"],
        content["mcs_150_mileage_year"],
    )
    rating = content["safety_rating"]
    return Snapshot(
        usdot=int(content["usdot"]),
        legal_name=content["legal_name"],
        dba_name=content["dba_name"],
        entity_type=content["entity_type"],
        operating_status=content["operating_status"],
        out_of_service_date=_to_date(content["out_of_service_date"]),
        physical_address=content["physical_address"],
        mailing_address=content["mailing_address"],
        phone=content["phone"],
        state_carrier_id=content["state_carrier_id"],
        duns_number=content["duns_number"],
        mc_mx_ff_numbers=content["mc_mx_ff_numbers"],
        power_units=content["power_units"],
        drivers=content["drivers"],
        mcs_150_form_date=_to_date(content["mcs_150_form_date"]),
        mcs_150_mileage_year=None if mileage is None else Mileage(mileage["mileage"], mileage["year"]),
        operation_classification=tuple(content["operation_classification"]),
        carrier_operation=tuple(content["carrier_operation"]),
        cargo_carried=tuple(content["cargo_carried"]),
        us_inspections=None
        if us is None
        else UsInspections(**{g: _from_figures(us[g]) for g in ("vehicle", "driver", "hazmat", "iep")}),
        canada_inspections=None
        if canada is None
        else CanadaInspections(**{g: _from_figures(canada[g]) for g in ("vehicle", "driver")}),
        us_crashes=_to_crashes(content["us_crashes"]),
        canada_crashes=_to_crashes(content["canada_crashes"]),
        safety_rating=None if rating is None else SafetyRating(rating),
        safety_rating_date=_to_date(content["safety_rating_date"]),
        safety_review_date=_to_date(content["safety_review_date"]),
        safety_type=content["safety_type"],
        latest_update=_to_date(content["latest_update"]),
    )
