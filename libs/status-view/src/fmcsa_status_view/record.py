"""The carrier record, derived from each source's newest successful fetch. Pure: no I/O, no clock.

`carrier_record(dot, sources)` takes a carrier's `status_source` rows (each holds its newest success's
`SourceSynced.summary`, `upstream_as_of` and `retrieved_at`) and gives its `CarrierRow`; the fold calls it
whenever a source's newest success changes, so a replay gives the same record. Each group comes from one
source, the first of its preference order that has succeeded:

- `identity` (csa, else inspections): `legal_name`, `dba_name`, `address` (one line), `phone` (SAFER's:
  from inspections whichever source gives the rest);
- `operation` (csa, else inspections): `status` (csa's `active`/`inactive`), `operating_status` (SAFER's
  text), `allowed_to_operate`, `out_of_service_date`;
- `safety_rating` (csa, else inspections): `rating` (`satisfactory`, `conditional`, `unsatisfactory`,
  `not_rated`), `date`;
- `oos_rates` (csa, else inspections' US figures): per `driver`, `vehicle`, `hazmat` its `inspections`,
  `out_of_service`, `rate` and `national_average` (decimal text);
- `crashes` (csa, else inspections' US figures): `total`, `fatal`, `injury`, `towaway`;
- `basics` (csa): `items` (each BASIC as the csa summary gives it), `alerts` (BASIC ids);
- `violations` (violations): `total`, `oos`, `inspections`, `per_basic`, `oos_per_basic`,
  `latest_inspection_date`, `listed` (rows the success listed for `status_violation`: its summary's
  `rows_total`, the summary's rows and its `ViolationsListed` pages; an older summary: its rows),
  `complete` (they are every row of the window; null: the event listed none);
- `authority` (authority, else csa): `common`, `contract`, `broker` (statuses), `dockets`, `oos_order`
  (`{date, reason}` or null);
- `insurance` (authority): `bipd_required`, `bipd_on_file`, `cargo_on_file`, `bond_on_file` (whole
  dollars), `filings`, `next_cancellation`.

Every group also carries `source`, `upstream_as_of` and `retrieved_at`. A key a summary does not carry
(an event written before the key existed) reads as None: that is the upcast, and an old summary gives the
same record as a new one whose added keys are null. A summary not of the expected shape gives what it can
and never raises: it comes from another service.

`violation_rows(dot, summary)` gives the rows of the violations summary's `rows` list, newest first; None
when the summary has no list (an older event). `page_rows(dot, offset, rows)` gives a page's rows, at
`seq` offset onwards. A summary with `rows_total` (one that may have pages) is taken in its order, so
its rows and its pages' number one list; an older one is sorted, as it always was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fmcsa_events.identifiers import SourceKey
from fmcsa_status_view.risk import assess
from fmcsa_status_view.rows import CarrierRow, JsonObject, SourceRow, ViolationRow

_RATINGS = {"satisfactory", "conditional", "unsatisfactory"}
_DOCKET = re.compile(r"\b(MC|MX|FF)[- ]?(\d{1,12})\b", re.IGNORECASE)


def docket_key(text: str) -> str | None:
    """A docket number as the search compares it (`MC-1034412`, `mc 1034412` → `MC1034412`); None for
    text that is no docket number.
    """
    match = _DOCKET.fullmatch(text.strip())
    return None if match is None else f"{match.group(1).upper()}{int(match.group(2))}"


def carrier_record(dot: str, sources: Mapping[SourceKey, SourceRow]) -> CarrierRow | None:
    """The record of one carrier from its sources' rows; None while no source has succeeded."""
    synced = {key: row for key, row in sources.items() if row.success_request_id is not None}
    if not synced:
        return None
    summaries = {key: _obj(row.last_summary) for key, row in synced.items()}
    csa, inspections = summaries.get(SourceKey.CSA), summaries.get(SourceKey.INSPECTIONS)
    violations, authority = summaries.get(SourceKey.VIOLATIONS), summaries.get(SourceKey.AUTHORITY)
    # each source's two times as text once per record (a record has a group per fact: ~9 per source)
    stamps = {key: (_iso(row.upstream_as_of), _iso(row.retrieved_at)) for key, row in synced.items()}

    def group(source: SourceKey, facts: JsonObject) -> JsonObject:
        upstream_as_of, retrieved_at = stamps[source]
        return {
            **facts,
            "source": source.value,
            "upstream_as_of": upstream_as_of,
            "retrieved_at": retrieved_at,
        }

    record = CarrierRow(dot=dot)
    phone = _text(inspections.get("phone")) if inspections is not None else None
    if csa is not None:
        record.identity = group(SourceKey.CSA, _csa_identity(csa, phone))
        record.operation = group(SourceKey.CSA, _csa_operation(csa))
        record.safety_rating = group(
            SourceKey.CSA, _rating(csa.get("safety_rating"), csa.get("safety_rating_date"))
        )
        record.oos_rates = group(SourceKey.CSA, _csa_oos(csa))
        record.crashes = group(SourceKey.CSA, _crashes(_obj(csa.get("crashes")), "towaway"))
        record.basics = group(
            SourceKey.CSA,
            {
                "items": [b for b in _list(csa.get("basics")) if isinstance(b, dict)],
                "alerts": _ints(csa.get("alerts")),
            },
        )
    elif inspections is not None:
        safer = inspections
        record.identity = group(
            SourceKey.INSPECTIONS,
            {
                "legal_name": _text(safer.get("legal_name")),
                "dba_name": _text(safer.get("dba_name")),
                "address": _text(safer.get("physical_address")),
                "phone": phone,
            },
        )
        record.operation = group(
            SourceKey.INSPECTIONS,
            {
                "status": None,
                "operating_status": _text(safer.get("operating_status")),
                "allowed_to_operate": None,
                "out_of_service_date": _text(safer.get("out_of_service_date")),
            },
        )
        record.safety_rating = group(
            SourceKey.INSPECTIONS, _rating(safer.get("safety_rating"), safer.get("safety_rating_date"))
        )
        record.oos_rates = group(SourceKey.INSPECTIONS, _safer_oos(_obj(safer.get("us_inspections"))))
        record.crashes = group(SourceKey.INSPECTIONS, _crashes(_obj(safer.get("us_crashes")), "tow"))
    if csa is not None and inspections is not None and record.operation is not None:
        record.operation["operating_status"] = _text(inspections.get("operating_status"))
    if violations is not None:
        record.violations = group(SourceKey.VIOLATIONS, _violations(violations))
    if authority is not None:
        record.authority = group(SourceKey.AUTHORITY, _authority(authority))
        record.insurance = group(SourceKey.AUTHORITY, _insurance(_obj(authority.get("insurance"))))
    elif csa is not None:
        statuses = _obj(csa.get("authority"))
        record.authority = group(
            SourceKey.CSA,
            {
                "common": _text(statuses.get("common")),
                "contract": _text(statuses.get("contract")),
                "broker": _text(statuses.get("broker")),
                "dockets": [],
                "oos_order": None,
            },
        )
    record.sources = {
        key.value: {
            "request_id": row.success_request_id,
            "upstream_as_of": stamps[key][0],
            "retrieved_at": stamps[key][1],
        }
        for key, row in sorted(synced.items())
    }
    identity = record.identity or {}
    record.legal_name = _text(identity.get("legal_name"))
    record.name_key = record.legal_name.casefold() if record.legal_name else None
    record.dba_name = _text(identity.get("dba_name"))
    dockets = list(_texts((record.authority or {}).get("dockets")))
    if inspections is not None:
        dockets += [m.group(0) for m in _DOCKET.finditer(_text(inspections.get("mc_mx_ff_numbers")) or "")]
    keys = sorted({k for d in dockets if (k := docket_key(d)) is not None})
    record.docket_keys = f",{','.join(keys)}," if keys else ""
    risk = assess(record)
    record.risk = risk.light.value
    record.risk_reasons = [reason.as_json() for reason in risk.reasons]
    return record


def violation_rows(dot: str, summary: Mapping[str, Any] | None) -> list[ViolationRow] | None:
    """The violation rows a violations summary lists, newest inspection first (`seq` 0 is the newest);
    None when it lists none at all (an event written before summaries carried rows).
    """
    listed = _obj(summary).get("rows")
    if not isinstance(listed, list):
        return None
    if _int(_obj(summary).get("rows_total")) is not None:
        return page_rows(dot, 0, listed)
    # an older summary's rows in their upstream order: newest inspection first, as the paged ones come
    keyed: list[tuple[tuple[str, str, str, str, int], ViolationRow]] = []
    for item in listed:
        row = _violation_row(dot, 0, item)
        if row is not None:
            keyed.append(((str(_text(item["date"])), row.inspection, row.code, row.unit, row.ordinal), row))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    for seq, (_, row) in enumerate(keyed):
        row.seq = seq
    return [row for _, row in keyed]


def page_rows(dot: str, offset: int, listed: Sequence[Any]) -> list[ViolationRow]:
    """The rows of one slice of a violation list, in its order, `seq` counting from `offset` (a row not
    of the expected shape is left out; its place stays unused).
    """
    out: list[ViolationRow] = []
    for index, item in enumerate(listed):
        row = _violation_row(dot, offset + index, item)
        if row is not None:
            out.append(row)
    return out


def _violation_row(dot: str, seq: int, item: Any) -> ViolationRow | None:
    if not isinstance(item, dict):
        return None
    inspection, code, unit = _text(item.get("inspection")), _text(item.get("code")), _text(item.get("unit"))
    on, ordinal = _text(item.get("date")), _int(item.get("ordinal"))
    if inspection is None or code is None or unit is None or on is None or ordinal is None:
        return None
    return ViolationRow(
        dot=dot,
        seq=seq,
        inspection=inspection,
        code=code,
        unit=unit,
        ordinal=ordinal,
        inspected_on=on[:10],
        basic=_text(item.get("basic")),
        oos=item.get("oos") is True,
        severity=_int(item.get("severity")),
        group_name=_text(item.get("group")),
        description=_text(item.get("description")),
    )


def _csa_identity(csa: Mapping[str, Any], phone: str | None) -> JsonObject:
    address = _obj(csa.get("address"))
    street, city = _text(address.get("street")), _text(address.get("city"))
    state, zip_code, country = (
        _text(address.get("state")),
        _text(address.get("zip")),
        _text(address.get("country")),
    )
    place = " ".join(p for p in (state, zip_code) if p)
    line = ", ".join(p for p in (street, city, place, country) if p) or None
    return {
        "legal_name": _text(csa.get("legal_name")),
        "dba_name": _text(csa.get("dba_name")),
        "address": line,
        "phone": phone,
    }


def _csa_operation(csa: Mapping[str, Any]) -> JsonObject:
    code = _text(csa.get("status_code"))
    status = {"A": "active", "I": "inactive"}.get(code.upper()) if code else None
    allowed = csa.get("allowed_to_operate")
    return {
        "status": status,
        "operating_status": None,
        "allowed_to_operate": allowed if isinstance(allowed, bool) else None,
        "out_of_service_date": _text(csa.get("out_of_service_date")),
    }


def _rating(rating: Any, on: Any) -> JsonObject:
    word = _text(rating)
    word = word.lower() if word else None
    return {"rating": word if word in _RATINGS else "not_rated", "date": _text(on)}


def _csa_oos(csa: Mapping[str, Any]) -> JsonObject:
    return _oos_groups(_obj(csa.get("inspections")), rate_key="oos_rate")


def _safer_oos(groups: Mapping[str, Any]) -> JsonObject:
    return _oos_groups(groups, rate_key="out_of_service_percent")


def _oos_groups(groups: Mapping[str, Any], *, rate_key: str) -> JsonObject:
    """Driver, vehicle and hazmat OOS figures; the summaries of csa and inspections name the rate apart."""
    out: JsonObject = {}
    for name in ("driver", "vehicle", "hazmat"):
        g = _obj(groups.get(name))
        out[name] = {
            "inspections": _int(g.get("inspections")),
            "out_of_service": _int(g.get("out_of_service")),
            "rate": _text(g.get(rate_key)),
            "national_average": _text(g.get("national_average")),
        }
    return out


def _crashes(crashes: Mapping[str, Any], towaway: str) -> JsonObject:
    return {
        "total": _int(crashes.get("total")),
        "fatal": _int(crashes.get("fatal")),
        "injury": _int(crashes.get("injury")),
        "towaway": _int(crashes.get(towaway)),
    }


def _violations(summary: Mapping[str, Any]) -> JsonObject:
    rows = summary.get("rows")
    complete = summary.get("rows_complete")
    total = _int(summary.get("rows_total"))
    return {
        "total": _int(summary.get("total")),
        "oos": _int(summary.get("oos")),
        "inspections": _int(summary.get("inspections")),
        "per_basic": _counts(summary.get("per_basic")),
        "oos_per_basic": _counts(summary.get("oos_per_basic")),
        "latest_inspection_date": _text(summary.get("latest_inspection_date")),
        "listed": (total if total is not None else len(rows)) if isinstance(rows, list) else None,
        "complete": complete if isinstance(complete, bool) and isinstance(rows, list) else None,
    }


def _authority(summary: Mapping[str, Any]) -> JsonObject:
    statuses = _obj(summary.get("authority"))
    order = summary.get("oos_order")
    return {
        "common": _text(statuses.get("common")),
        "contract": _text(statuses.get("contract")),
        "broker": _text(statuses.get("broker")),
        "dockets": list(_texts(summary.get("dockets"))),
        "oos_order": (
            {"date": _text(order.get("date")), "reason": _text(order.get("reason"))}
            if isinstance(order, dict)
            else None
        ),
    }


def _insurance(insurance: Mapping[str, Any]) -> JsonObject:
    return {
        "bipd_required": _int(insurance.get("bipd_required")),
        "bipd_on_file": _int(insurance.get("bipd_on_file")),
        "cargo_on_file": _int(insurance.get("cargo_on_file")),
        "bond_on_file": _int(insurance.get("bond_on_file")),
        "filings": _int(insurance.get("filings")),
        "next_cancellation": _text(insurance.get("next_cancellation")),
    }


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _texts(value: Any) -> list[str]:
    return [t for v in _list(value) if (t := _text(v)) is not None]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ints(value: Any) -> list[int]:
    return [i for v in _list(value) if (i := _int(v)) is not None]


def _counts(value: Any) -> dict[str, int]:
    return {str(k): n for k, v in _obj(value).items() if (n := _int(v)) is not None}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
