"""The risk light of a carrier: one pure function over its record (`assess`). No I/O, no clock.

The light is the worst of its reasons; every reason has a code, its light and a sentence for people:

- red `no_active_authority`: `authority` knows a status and none of common, contract, broker is active
  (a pending revocation is still active). The record does not say which kind the carrier needs, so any
  active one counts;
- red `dot_inactive`: `operation.status` is `inactive` (csa), or SAFER's operating status starts with
  `INACTIVE`, `NOT AUTHORIZED` or `OUT-OF-SERVICE`;
- red `not_allowed_to_operate`: `operation.allowed_to_operate` is false;
- red `out_of_service_order`: `authority.oos_order` is set;
- red `rating_unsatisfactory`: `safety_rating.rating` is `unsatisfactory`;
- red `insurance_below_required`: `insurance`: BIPD on file below the required amount, both known;
- yellow `basic_alert`: `basics`: a BASIC in alert (one reason per BASIC);
- yellow `revocation_pending`: an `authority` status is `pending_revocation` (one reason per kind);
- yellow `insurance_cancellation_pending`: `insurance.next_cancellation` is set;
- yellow `rating_conditional`: `safety_rating.rating` is `conditional`;
- green, no reason: a record with facts and none of the above;
- unknown `no_data`: none of the groups these read is known yet.

A fact the record does not have is not a reason: the light says what is known to be wrong, and the
record's groups say how fresh each fact is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fmcsa_status_view.rows import CarrierRow, JsonObject


class Light(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"
    UNKNOWN = "unknown"


_WORST = (Light.RED, Light.YELLOW, Light.GREEN, Light.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    light: Light
    text: str

    def as_json(self) -> JsonObject:
        return {"code": self.code, "light": self.light.value, "text": self.text}


@dataclass(frozen=True, slots=True)
class Risk:
    light: Light
    reasons: tuple[Reason, ...]


_KINDS = ("common", "contract", "broker")
_ACTIVE = {"active", "pending_revocation"}
_SAFER_INACTIVE = ("INACTIVE", "NOT AUTHORIZED", "OUT-OF-SERVICE")


def assess(record: CarrierRow) -> Risk:
    """The light and its reasons (red ones first, in the table's order)."""
    reasons: list[Reason] = []
    authority, operation = record.authority, record.operation
    rating, insurance, basics = record.safety_rating, record.insurance, record.basics
    statuses = {kind: authority.get(kind) for kind in _KINDS} if authority else {}
    known = {kind: s for kind, s in statuses.items() if isinstance(s, str)}
    if known and not any(s in _ACTIVE for s in known.values()):
        said = ", ".join(f"{kind} {status}" for kind, status in known.items())
        reasons.append(Reason("no_active_authority", Light.RED, f"No active operating authority ({said})."))
    if operation:
        safer = operation.get("operating_status")
        if operation.get("status") == "inactive":
            reasons.append(Reason("dot_inactive", Light.RED, "The USDOT number is inactive."))
        elif isinstance(safer, str) and safer.upper().startswith(_SAFER_INACTIVE):
            reasons.append(Reason("dot_inactive", Light.RED, f"SAFER's operating status is {safer}."))
        if operation.get("allowed_to_operate") is False:
            reasons.append(
                Reason("not_allowed_to_operate", Light.RED, "FMCSA says it is not allowed to operate.")
            )
    order = authority.get("oos_order") if authority else None
    if isinstance(order, dict):
        since, why = order.get("date"), order.get("reason")
        text = f"Under an out-of-service order since {since}" + (f" ({why})." if why else ".")
        reasons.append(Reason("out_of_service_order", Light.RED, text))
    grade = rating.get("rating") if rating else None
    if grade == "unsatisfactory":
        reasons.append(Reason("rating_unsatisfactory", Light.RED, _rated("Unsatisfactory", rating)))
    if insurance:
        on_file, required = _int(insurance.get("bipd_on_file")), _int(insurance.get("bipd_required"))
        if on_file is not None and required is not None and on_file < required:
            text = f"BIPD insurance on file (${on_file:,}) is below the required ${required:,}."
            reasons.append(Reason("insurance_below_required", Light.RED, text))
    if basics:
        items = {b.get("id"): b for b in basics.get("items") or () if isinstance(b, dict)}
        for basic_id in basics.get("alerts") or ():
            name = (items.get(basic_id) or {}).get("name") or f"BASIC {basic_id}"
            reasons.append(Reason("basic_alert", Light.YELLOW, f"{name}: in alert."))
    for kind, status in known.items():
        if status == "pending_revocation":
            reasons.append(
                Reason("revocation_pending", Light.YELLOW, f"Revocation of its {kind} authority is pending.")
            )
    if insurance and isinstance(cancel := insurance.get("next_cancellation"), str):
        text = f"An insurance filing is to be cancelled on {cancel}."
        reasons.append(Reason("insurance_cancellation_pending", Light.YELLOW, text))
    if grade == "conditional":
        reasons.append(Reason("rating_conditional", Light.YELLOW, _rated("Conditional", rating)))
    if reasons:
        reasons.sort(key=lambda r: _WORST.index(r.light))  # stable: each light keeps the table's order
        return Risk(reasons[0].light, tuple(reasons))
    if not any((authority, operation, rating, insurance, basics)):
        return Risk(
            Light.UNKNOWN, (Reason("no_data", Light.UNKNOWN, "No fact about this carrier is known yet."),)
        )
    return Risk(Light.GREEN, ())


def _rated(word: str, rating: JsonObject | None) -> str:
    on = rating.get("date") if rating else None
    return f"Safety rating {word}" + (f" since {on}." if on else ".")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
