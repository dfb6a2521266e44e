"""Each upstream answer to a value or the one `Failure` it stands for (docs/upstreams.md 3.9 and 4.7).

QCMobile (`/carriers/{dot}`, `/authority`, `/docket-numbers`, `/oos`): checked in the order 429, JSON,
`content`, status; `content` is read before the status because "Webkey not found" comes as a 404 and
would otherwise pass for an unknown carrier. `content: null` on `/carriers/{dot}` is `not_found`; on a
sub-resource (asked only once the carrier was found) null or `[]` is an empty list.

DataHub (Socrata `resource/{dataset}.json`): 2xx JSON array of row objects, every value text, a null
value's key omitted. Every field is optional except that a row's `dot_number` must be the request's.

Amounts come in thousands of dollars and leave here in whole dollars. Every number or date that does not
read is `invalid_response` (not retried); a body that is not JSON is retried (it may be cut short).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import sample
from fmcsa_source_authority.domain.model import (
    AuthorityFetch,
    AuthorityStatus,
    AuthorityType,
    Docket,
    Filing,
    OosOrder,
    Profile,
)
from fmcsa_source_kit.failures import Failure
from fmcsa_source_kit.said import Said, ShapeError, _json, _list, _object

T = TypeVar("T")
_STATUS_LETTERS = {"A": AuthorityStatus.ACTIVE, "I": AuthorityStatus.INACTIVE, "N": AuthorityStatus.NONE}


# --- QCMobile --------------------------------------------------------------------------------------


def qcmobile_content(said: Said, dot: str, now: datetime, *, retry_after_max_s: float) -> Any | Failure:
    """The `content` of a usable QCMobile answer (None or a list or an object), or its failure."""
    envelope = _json(said, now, retry_after_max_s)
    if isinstance(envelope, Failure):
        return envelope
    if isinstance(envelope, dict) and "content" in envelope:
        content = envelope["content"]
        if isinstance(content, str):
            text = sample(content, limit=120)
            if "webkey" in content.lower():
                return said.failure(
                    ErrorKind.NOT_CONFIGURED, f"QCMobile refused the webKey: {text}", retryable=False
                )
            return said.failure(
                ErrorKind.UPSTREAM_ERROR, f"QCMobile said: {text}", retryable=said.status >= 500
            )
        if content in (None, []) and said.call == "carrier" and said.status in (200, 404):
            return said.failure(
                ErrorKind.NOT_FOUND, f"QCMobile knows no carrier with USDOT number {dot}", retryable=False
            )
        if said.status in (200, 404) and content in (None, []):
            return []
    if not 200 <= said.status < 300:
        return said.refused()
    if not isinstance(envelope, dict) or "content" not in envelope:
        return said.failure(
            ErrorKind.INVALID_RESPONSE, "QCMobile answered JSON without a `content` envelope", retryable=False
        )
    return envelope["content"]


def retrieval_date(body: bytes) -> datetime | None:
    """QCMobile's `retrievalDate` (`2025-11-04T14:12:08.317+0000`), or None when absent or unreadable."""
    try:
        value = json.loads(body).get("retrievalDate")
        moment = datetime.fromisoformat(value)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ShapeError(f"{name} is not text")
    text = " ".join(str(value).split())
    return text or None


def _dollars(value: object, name: str) -> int | None:
    """An amount in thousands of dollars (`"750"`, `750`, `"1000.5"`) as whole dollars."""
    text = _text(value, name)
    if text is None:
        return None
    try:
        amount = Decimal(text.replace(",", "")) * 1000
    except InvalidOperation:
        raise ShapeError(f"{name} is not a number") from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise ShapeError(f"{name} is not a whole number of dollars")
    return int(amount)


_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")


def parse_date(value: object, name: str) -> date | None:
    """`YYYY-MM-DD`, `MM/DD/YYYY` or Socrata's `YYYY-MM-DDT00:00:00.000`; None when empty."""
    text = _text(value, name)
    if text is None:
        return None
    head = text.split("T", 1)[0]
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(head, form).date()
        except ValueError:
            continue
    raise ShapeError(f"{name} is not a date")


def _status(value: object, name: str) -> AuthorityStatus | None:
    text = _text(value, name)
    if text is None:
        return None
    if text.upper() not in _STATUS_LETTERS:
        raise ShapeError(f"{name} is not A, I or N")
    return _STATUS_LETTERS[text.upper()]


def _same_dot(value: object, dot: str, name: str) -> None:
    text = _text(value, name)
    if text is not None and text.lstrip("0") != dot:
        raise ShapeError(f"{name} is another carrier's")


@dataclass(frozen=True, slots=True)
class CarrierAnswer:
    """What `/carriers/{dot}` says of authority and insurance."""

    statuses: Mapping[AuthorityType, AuthorityStatus | None]
    bipd_required: int | None
    bipd_on_file: int | None
    cargo_on_file: int | None
    bond_on_file: int | None
    oos_date: date | None
    as_of: datetime | None


def _qcmobile(read: Callable[[Any, str], T]) -> Callable[..., T | Failure]:
    """A QCMobile parser from a reader of the answer's `content` (which raises `ShapeError`)."""

    def parse(said: Said, dot: str, now: datetime, *, retry_after_max_s: float) -> T | Failure:
        content = qcmobile_content(said, dot, now, retry_after_max_s=retry_after_max_s)
        if isinstance(content, Failure):
            return content
        try:
            return read(content, dot)
        except ShapeError as error:
            return said.shape(error)

    return parse


def _entries(content: Any, dot: str, key: str | None) -> Iterator[dict[str, Any]]:
    """The objects of a sub-resource list (under `key` in each item), each checked to be `dot`'s."""
    for index, item in enumerate(_list(content, "content")):
        raw = _object(item, f"content[{index}]")
        if key is not None:
            raw = _object(raw.get(key), f"content[{index}].{key}")
        _same_dot(raw.get("dotNumber"), dot, f"content[{index}].dotNumber")
        yield raw


def _statuses(raw: Mapping[str, Any]) -> dict[AuthorityType, AuthorityStatus | None]:
    return {t: _status(raw.get(f"{t}AuthorityStatus"), f"{t}AuthorityStatus") for t in AuthorityType}


def _flagged(raw: Mapping[str, Any], suffix: str) -> frozenset[AuthorityType]:
    """The authority types whose `<type>Authority<suffix>` flag is "Y"."""
    return frozenset(
        t for t in AuthorityType if (_text(raw.get(f"{t}Authority{suffix}"), suffix) or "").upper() == "Y"
    )


def _carrier(content: Any, dot: str) -> CarrierAnswer:
    carrier = _object(_object(content, "content").get("carrier"), "content.carrier")
    _same_dot(carrier.get("dotNumber"), dot, "carrier.dotNumber")
    amounts = {
        name: _dollars(carrier.get(field), field)
        for name, field in (
            ("bipd_required", "bipdRequiredAmount"),
            ("bipd_on_file", "bipdInsuranceOnFile"),
            ("cargo_on_file", "cargoInsuranceOnFile"),
            ("bond_on_file", "bondInsuranceOnFile"),
        )
    }
    oos_date = parse_date(carrier.get("oosDate"), "oosDate")
    return CarrierAnswer(statuses=_statuses(carrier), **amounts, oos_date=oos_date, as_of=None)


@dataclass(frozen=True, slots=True)
class AuthorityEntry:
    """One `/authority` entry: its docket and, per authority type, the status and the pending flags
    (`<type>AuthorityPendingStatus`, `<type>AuthorityRevocationStatus`: "Y"/"N", meaning unverified).
    """

    docket: str | None
    statuses: Mapping[AuthorityType, AuthorityStatus | None]
    pending_grant: frozenset[AuthorityType]
    pending_revocation: frozenset[AuthorityType]


def _docket(raw: Mapping[str, Any]) -> str | None:
    letters, digits = _text(raw.get("prefix"), "prefix"), _text(raw.get("docketNumber"), "docketNumber")
    if digits is None:
        return None
    if not digits.isdigit():
        raise ShapeError("docketNumber is not a number")
    return f"{(letters or '').upper()}{int(digits)}"


def _authority(content: Any, dot: str) -> list[AuthorityEntry]:
    return [
        AuthorityEntry(
            _docket(raw), _statuses(raw), _flagged(raw, "PendingStatus"), _flagged(raw, "RevocationStatus")
        )
        for raw in _entries(content, dot, "carrierAuthority")
    ]


def _dockets(content: Any, dot: str) -> list[str]:
    return [docket for raw in _entries(content, dot, None) if (docket := _docket(raw))]


def _order(raw: Mapping[str, Any]) -> OosOrder:
    day = parse_date(raw.get("oosDate"), "oos.oosDate")
    if day is None:
        raise ShapeError("oos.oosDate is missing")
    reason = _text(raw.get("oosReasonDescription"), "oosReasonDescription")
    return OosOrder(day, reason or _text(raw.get("oosReason"), "oosReason"))


_parse_carrier = _qcmobile(_carrier)
parse_authority = _qcmobile(_authority)
parse_dockets = _qcmobile(_dockets)
parse_oos = _qcmobile(lambda content, dot: [_order(raw) for raw in _entries(content, dot, "oos")])


def parse_carrier(
    said: Said, dot: str, now: datetime, *, retry_after_max_s: float
) -> CarrierAnswer | Failure:
    """The carrier record, with QCMobile's `retrievalDate` as its `as_of`."""
    answer = _parse_carrier(said, dot, now, retry_after_max_s=retry_after_max_s)
    if isinstance(answer, Failure):
        return answer
    return replace(answer, as_of=retrieval_date(said.body))


# --- DataHub (Socrata) ---------------------------------------------------------------------------


def _socrata_code(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    code = parsed.get("code") or parsed.get("errorCode") if isinstance(parsed, dict) else None
    return sample(code, limit=80) if isinstance(code, str) else None


def parse_filings(
    said: Said, dot: str, now: datetime, *, retry_after_max_s: float, token_sent: bool
) -> list[Filing] | Failure:
    """One page of insurance filings. 401/403 with a token is `not_configured` (fix or remove it)."""
    if said.status in (401, 403) and token_sent:
        code = _socrata_code(said.body)
        return said.failure(
            ErrorKind.NOT_CONFIGURED,
            f"DataHub refused the app token ({said.status} {code or ''}): fix or remove it",
            retryable=False,
        )
    rows = _json(said, now, retry_after_max_s)
    if isinstance(rows, Failure):
        return rows
    if not 200 <= said.status < 300:
        return said.refused()
    try:
        return [
            filing_of(_object(row, f"row {index}"), dot)
            for index, row in enumerate(_list(rows, "the answer"))
        ]
    except ShapeError as error:
        return said.shape(error)


def filing_of(row: Mapping[str, Any], dot: str) -> Filing:
    """A filing from one ActPendInsur row (column meanings unverified: README)."""
    _same_dot(row.get("dot_number"), dot, "dot_number")
    kind = _text(row.get("ins_type_desc"), "ins_type_desc")
    return Filing(
        dot=dot,
        kind=(kind or "unknown").upper(),
        form=_text(row.get("ins_form_code"), "ins_form_code"),
        insurer=_text(row.get("name_company"), "name_company"),
        policy_number=_text(row.get("policy_no"), "policy_no"),
        coverage=_dollars(row.get("max_cov_amount"), "max_cov_amount"),
        effective=parse_date(row.get("effective_date"), "effective_date"),
        cancellation=parse_date(row.get("cancl_effective_date"), "cancl_effective_date"),
        docket=_text(row.get("docket_number"), "docket_number"),
        transacted=parse_date(row.get("trans_date"), "trans_date"),
    )


# --- one carrier ----------------------------------------------------------------------------------


def _current_status(
    kind: AuthorityType, carrier: CarrierAnswer, entries: Sequence[AuthorityEntry]
) -> AuthorityStatus | None:
    """The carrier record's status; a pending revocation, else a pending grant, flagged by any
    `/authority` entry wins over it. Without the record's status, the best of the entries' (A, I, N).
    """
    if any(kind in entry.pending_revocation for entry in entries):
        return AuthorityStatus.PENDING_REVOCATION
    if any(kind in entry.pending_grant for entry in entries):
        return AuthorityStatus.PENDING_GRANT
    if (status := carrier.statuses.get(kind)) is not None:
        return status
    seen = {entry.statuses.get(kind) for entry in entries}
    return next(
        (s for s in (AuthorityStatus.ACTIVE, AuthorityStatus.INACTIVE, AuthorityStatus.NONE) if s in seen),
        None,
    )


def current_oos_order(carrier: CarrierAnswer, orders: Sequence[OosOrder]) -> OosOrder | None:
    """The order in force: the carrier record's `oosDate` when set, with the reason of the `/oos` order of
    that date (else of the newest one). No `oosDate`: the orders listed are taken as past (unverified).
    """
    if carrier.oos_date is None:
        return None
    same_day = [order for order in orders if order.day == carrier.oos_date]
    newest = sorted(same_day or orders, key=lambda order: order.day)
    return OosOrder(carrier.oos_date, newest[-1].reason if newest else None)


def _unique_filings(filings: Sequence[Filing]) -> tuple[Filing, ...]:
    """One filing per subject (type and policy): the one effective last, then transacted last."""
    chosen: dict[str, Filing] = {}
    order = sorted(filings, key=lambda f: (f.effective or date.min, f.transacted or date.min, repr(f)))
    for filing in order:
        chosen[filing.subject] = filing
    return tuple(chosen[subject] for subject in sorted(chosen))


def assemble(
    dot: str,
    carrier: CarrierAnswer,
    entries: Sequence[AuthorityEntry],
    dockets: Sequence[str],
    orders: Sequence[OosOrder],
    filings: Sequence[Filing],
    retrieved_at: datetime,
) -> AuthorityFetch:
    profile = Profile(
        dot=dot,
        common=_current_status(AuthorityType.COMMON, carrier, entries),
        contract=_current_status(AuthorityType.CONTRACT, carrier, entries),
        broker=_current_status(AuthorityType.BROKER, carrier, entries),
        bipd_required=carrier.bipd_required,
        bipd_on_file=carrier.bipd_on_file,
        cargo_on_file=carrier.cargo_on_file,
        bond_on_file=carrier.bond_on_file,
        oos_order=current_oos_order(carrier, orders),
    )
    numbers = sorted({*dockets, *(entry.docket for entry in entries if entry.docket)})
    transacted = [datetime.combine(f.transacted, time(), UTC) for f in filings if f.transacted is not None]
    stamps = [carrier.as_of or retrieved_at, *transacted]
    return AuthorityFetch(
        dot=dot,
        profile=profile,
        dockets=tuple(Docket(dot, number) for number in numbers),
        filings=_unique_filings(filings),
        retrieved_at=retrieved_at,
        upstream_as_of=max(stamps),
    )
