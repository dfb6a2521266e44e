"""The compact view of a fetch that the status page shows (`SourceSynced.summary`)."""

from __future__ import annotations

from pydantic import JsonValue

from fmcsa_source_inspections.domain.content import canada_content, crashes_content, opt_date, us_content
from fmcsa_source_inspections.domain.records import InspectionsFetch


def summarize(fetch: InspectionsFetch) -> dict[str, JsonValue]:
    """The compact view the status page shows: US and Canada inspection and out-of-service figures
    per group, crashes, operating status and safety rating, and the identity SAFER shows
    (`dba_name`, `physical_address`, `phone`, `mc_mx_ff_numbers`; added for the carrier record, so an
    older event lacks them and a reader takes them as None). Decimals as strings, dates ISO; a block
    the upstream left empty is None, never zeros.
    """
    snapshot = fetch.snapshot
    return {
        "usdot": str(snapshot.usdot),
        "legal_name": snapshot.legal_name,
        "dba_name": snapshot.dba_name,
        "physical_address": snapshot.physical_address,
        "phone": snapshot.phone,
        "mc_mx_ff_numbers": snapshot.mc_mx_ff_numbers,
        "operating_status": snapshot.operating_status,
        "out_of_service_date": opt_date(snapshot.out_of_service_date),
        "safety_rating": None if snapshot.safety_rating is None else snapshot.safety_rating.value,
        "safety_rating_date": opt_date(snapshot.safety_rating_date),
        "latest_update": opt_date(snapshot.latest_update),
        "us_inspections": us_content(snapshot.us_inspections),
        "canada_inspections": canada_content(snapshot.canada_inspections),
        "us_crashes": crashes_content(snapshot.us_crashes),
        "canada_crashes": crashes_content(snapshot.canada_crashes),
    }
