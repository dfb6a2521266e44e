"""The compact view of one csa fetch that the status page shows, and the content hashes per record."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Final

from pydantic import JsonValue

from fmcsa_source_csa.domain.model import (
    AuthorityStatus,
    BasicScore,
    CsaFetch,
    PercentileStatus,
    SafetyRating,
    decimal_text,
)

_RATING_WORDS: Final = {
    SafetyRating.SATISFACTORY: "satisfactory",
    SafetyRating.CONDITIONAL: "conditional",
    SafetyRating.UNSATISFACTORY: "unsatisfactory",
}
_AUTHORITY_WORDS: Final = {
    AuthorityStatus.ACTIVE: "active",
    AuthorityStatus.INACTIVE: "inactive",
    AuthorityStatus.NONE: "none",
}


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _basic_summary(basic: BasicScore) -> dict[str, JsonValue]:
    return {
        "id": basic.basics_id,
        "code": basic.code,
        "name": basic.name,
        "percentile": decimal_text(basic.percentile),
        "percentile_status": basic.percentile_status.value,
        "measure": decimal_text(basic.measure),
        "threshold": basic.threshold,
        "alert": basic.intervention_alert.value,
        "alert_reason": basic.intervention_alert.reason.value if basic.intervention_alert.reason else None,
        "on_road_alert": basic.on_road_alert.value,
        "serious_violation": basic.serious_violation.value,
        "inspections_with_violation": basic.inspections_with_violation,
        "violations": basic.violations,
    }


def _inspection_group(
    inspections: int | None, oos: int | None, rate: Decimal | None, average: Decimal | None
) -> JsonValue:
    return {
        "inspections": inspections,
        "out_of_service": oos,
        "oos_rate": decimal_text(rate),
        "national_average": decimal_text(average),
    }


def summarize(fetch: CsaFetch) -> dict[str, JsonValue]:
    """Return the compact view of one fetch that the status page shows.

    Per BASIC its percentile (with status), measure, threshold and alert flags; the carrier's
    rating, authority, OOS and crash figures; its identity (`dba_name`, `status_code`: QCMobile's
    `A` active / `I` inactive, `address`; added for the carrier record, so an older event lacks
    them and a reader takes them as None). Decimals are strings, dates ISO; a hidden value is
    None beside its reason, never 0.
    """
    carrier = fetch.carrier
    basics: list[JsonValue] = [_basic_summary(b) for b in fetch.basics]
    alerts: list[JsonValue] = [
        b.basics_id for b in fetch.basics if b.intervention_alert.value or b.on_road_alert.value
    ]
    return {
        "basics": basics,
        "alerts": alerts,
        "percentiles_public": any(b.percentile_status is PercentileStatus.PUBLIC for b in fetch.basics),
        "legal_name": carrier.legal_name,
        "dba_name": carrier.dba_name,
        "status_code": carrier.status_code,
        "address": {
            "street": carrier.street,
            "city": carrier.city,
            "state": carrier.state,
            "zip": carrier.zipcode,
            "country": carrier.country,
        },
        "allowed_to_operate": carrier.allowed_to_operate,
        "out_of_service_date": _iso(carrier.out_of_service_date),
        "safety_rating": _RATING_WORDS[carrier.safety_rating] if carrier.safety_rating else "not_rated",
        "safety_rating_date": _iso(carrier.safety_rating_date),
        "authority": {
            "common": _AUTHORITY_WORDS[carrier.common_authority] if carrier.common_authority else None,
            "contract": _AUTHORITY_WORDS[carrier.contract_authority] if carrier.contract_authority else None,
            "broker": _AUTHORITY_WORDS[carrier.broker_authority] if carrier.broker_authority else None,
        },
        "inspections": {
            "driver": _inspection_group(
                carrier.driver_inspections,
                carrier.driver_oos_inspections,
                carrier.driver_oos_rate,
                carrier.driver_oos_rate_national_average,
            ),
            "vehicle": _inspection_group(
                carrier.vehicle_inspections,
                carrier.vehicle_oos_inspections,
                carrier.vehicle_oos_rate,
                carrier.vehicle_oos_rate_national_average,
            ),
            "hazmat": _inspection_group(
                carrier.hazmat_inspections,
                carrier.hazmat_oos_inspections,
                carrier.hazmat_oos_rate,
                carrier.hazmat_oos_rate_national_average,
            ),
        },
        "crashes": {
            "total": carrier.crash_total,
            "fatal": carrier.fatal_crashes,
            "injury": carrier.injury_crashes,
            "towaway": carrier.towaway_crashes,
        },
    }


def fetch_hashes(fetch: CsaFetch) -> dict[str, str]:
    """Return the content hash per record key: `"carrier"` and each BASIC id as a string."""
    return {
        "carrier": fetch.carrier.content_hash(),
        **{str(b.basics_id): b.content_hash() for b in fetch.basics},
    }
