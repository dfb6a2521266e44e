"""Parsing both upstreams: the example bodies, every failure kind, dates, amounts and the assembly."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from authority_support import DOT, NOW, insurance_row, said

from fmcsa_events.models import ErrorKind
from fmcsa_source_authority.domain import AuthorityStatus, AuthorityType, OosOrder
from fmcsa_source_authority.domain.parse import (
    AuthorityEntry,
    CarrierAnswer,
    assemble,
    parse_authority,
    parse_carrier,
    parse_date,
    parse_dockets,
    parse_filings,
    parse_oos,
)
from fmcsa_source_kit.failures import Failure

LIMIT = {"retry_after_max_s": 60.0}


def example(examples_dir: Path, name: str) -> bytes:
    return (examples_dir / name).read_bytes()


def failed(result: object, kind: ErrorKind, *, retryable: bool) -> Failure:
    assert isinstance(result, Failure), result
    assert (result.kind, result.retryable) == (kind, retryable), result
    return result


def test_the_example_carrier_gives_statuses_amounts_in_dollars_and_its_retrieval_date(
    examples_dir: Path,
) -> None:
    answer = parse_carrier(said("carrier", example(examples_dir, "qcmobile-carrier.json")), DOT, NOW, **LIMIT)
    assert isinstance(answer, CarrierAnswer)
    assert dict(answer.statuses) == {
        AuthorityType.COMMON: AuthorityStatus.ACTIVE,
        AuthorityType.CONTRACT: AuthorityStatus.NONE,
        AuthorityType.BROKER: AuthorityStatus.NONE,
    }
    assert (answer.bipd_required, answer.bipd_on_file, answer.cargo_on_file, answer.bond_on_file) == (
        750_000,
        1_000_000,
        0,
        0,
    )
    assert answer.oos_date is None
    assert answer.as_of == datetime(2025, 11, 4, 14, 12, 8, 317000, tzinfo=UTC)


def test_the_example_authority_docket_and_oos_answers(examples_dir: Path) -> None:
    entries = parse_authority(
        said("authority", example(examples_dir, "qcmobile-authority.json")), DOT, NOW, **LIMIT
    )
    assert isinstance(entries, list)
    (entry,) = entries
    assert entry.docket == "MC1034412"
    assert entry.statuses[AuthorityType.COMMON] is AuthorityStatus.ACTIVE
    assert entry.pending_grant == entry.pending_revocation == frozenset()
    orders = parse_oos(said("oos", example(examples_dir, "qcmobile-oos.json")), DOT, NOW, **LIMIT)
    assert orders == [OosOrder(date(2021, 3, 9), "90 day failure to pay fine")]
    dockets = {
        "content": [
            {"docketNumber": 1034412, "prefix": "MC", "dotNumber": int(DOT)},
            {"docketNumber": 7890, "prefix": "ff"},
        ]
    }
    assert parse_dockets(said("docket-numbers", dockets), DOT, NOW, **LIMIT) == ["MC1034412", "FF7890"]


def test_pending_flags_of_an_authority_entry_are_read_per_type() -> None:
    body = {
        "content": [
            {
                "carrierAuthority": {
                    "commonAuthorityStatus": "A",
                    "commonAuthorityRevocationStatus": "Y",
                    "brokerAuthorityPendingStatus": "Y",
                    "docketNumber": 1,
                    "prefix": "MC",
                }
            }
        ]
    }
    (entry,) = parse_authority(said("authority", body), DOT, NOW, **LIMIT)  # type: ignore[misc]
    assert entry.pending_revocation == {AuthorityType.COMMON}
    assert entry.pending_grant == {AuthorityType.BROKER}


def test_unknown_carrier_is_not_found_and_empty_sub_resources_are_empty_lists(examples_dir: Path) -> None:
    unknown = example(examples_dir, "qcmobile-carrier-unknown.json")
    failed(parse_carrier(said("carrier", unknown), DOT, NOW, **LIMIT), ErrorKind.NOT_FOUND, retryable=False)
    assert parse_oos(said("oos", {"content": []}), DOT, NOW, **LIMIT) == []
    assert parse_authority(said("authority", {"content": None}), DOT, NOW, **LIMIT) == []


@pytest.mark.parametrize(
    ("name", "status", "kind", "retryable"),
    [
        ("qcmobile-webkey-not-found.json", 404, ErrorKind.NOT_CONFIGURED, False),
        ("qcmobile-webkey-missing.json", 404, ErrorKind.NOT_CONFIGURED, False),
        ("qcmobile-maintenance.html", 200, ErrorKind.UPSTREAM_ERROR, True),
    ],
)
def test_qcmobile_error_bodies(
    examples_dir: Path, name: str, status: int, kind: ErrorKind, retryable: bool
) -> None:
    for parse in (parse_carrier, parse_authority, parse_dockets, parse_oos):
        failed(
            parse(said("carrier", example(examples_dir, name), status), DOT, NOW, **LIMIT),
            kind,
            retryable=retryable,
        )


def test_qcmobile_statuses_429_5xx_4xx_and_bad_bodies() -> None:
    limited = failed(
        parse_carrier(said("carrier", b"Too Many Requests", 429, {"Retry-After": "7"}), DOT, NOW, **LIMIT),
        ErrorKind.RATE_LIMITED,
        retryable=True,
    )
    assert limited.retry_after_s == 7.0
    failed(
        parse_oos(said("oos", b"<html>", 503), DOT, NOW, **LIMIT), ErrorKind.UPSTREAM_ERROR, retryable=True
    )
    failed(parse_oos(said("oos", {}, 403), DOT, NOW, **LIMIT), ErrorKind.UPSTREAM_ERROR, retryable=False)
    failed(
        parse_oos(said("oos", b'{"content": [', 200), DOT, NOW, **LIMIT),
        ErrorKind.INVALID_RESPONSE,
        retryable=True,
    )
    failed(
        parse_oos(said("oos", {"content": {"x": 1}}), DOT, NOW, **LIMIT),
        ErrorKind.INVALID_RESPONSE,
        retryable=False,
    )
    other = {"content": {"carrier": {"dotNumber": 123, "commonAuthorityStatus": "A"}}}
    failed(
        parse_carrier(said("carrier", other), DOT, NOW, **LIMIT), ErrorKind.INVALID_RESPONSE, retryable=False
    )
    odd = {"content": {"carrier": {"commonAuthorityStatus": "Q"}}}
    failed(
        parse_carrier(said("carrier", odd), DOT, NOW, **LIMIT), ErrorKind.INVALID_RESPONSE, retryable=False
    )
    amount = {"content": {"carrier": {"bipdInsuranceOnFile": "lots"}}}
    failed(
        parse_carrier(said("carrier", amount), DOT, NOW, **LIMIT), ErrorKind.INVALID_RESPONSE, retryable=False
    )


def test_the_tax_id_never_reaches_a_failure_detail(examples_dir: Path) -> None:
    body = json.loads(example(examples_dir, "qcmobile-carrier.json"))
    body["content"]["carrier"]["commonAuthorityStatus"] = "Q"
    failure = failed(
        parse_carrier(said("carrier", body), DOT, NOW, **LIMIT), ErrorKind.INVALID_RESPONSE, retryable=False
    )
    assert "824417093" not in failure.detail + failure.message


def test_insurance_rows_parse_both_date_spellings_and_dollars() -> None:
    rows = [
        insurance_row(),
        insurance_row(
            ins_type_desc="CARGO",
            policy_no="CRG 1/2",
            max_cov_amount="100",
            cancl_effective_date="04/09/2026",
        ),
    ]
    filings = parse_filings(said("insurance", rows, upstream="DataHub"), DOT, NOW, token_sent=False, **LIMIT)
    assert isinstance(filings, list)
    bipd, cargo = filings
    assert (bipd.kind, bipd.coverage, bipd.effective, bipd.cancellation, bipd.transacted) == (
        "BIPD",
        1_000_000,
        date(2026, 1, 15),
        None,
        date(2026, 1, 15),
    )
    assert (cargo.subject, cargo.coverage, cargo.cancellation) == ("cargo_crg_1_2", 100_000, date(2026, 4, 9))
    assert parse_filings(said("insurance", [], upstream="DataHub"), DOT, NOW, token_sent=False, **LIMIT) == []


def test_insurance_failures(examples_dir: Path) -> None:
    def parse(body: object, status: int = 200, *, token: bool = False) -> object:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return parse_filings(
            said("insurance", raw, status, upstream="DataHub"), DOT, NOW, token_sent=token, **LIMIT
        )

    refused = example(examples_dir, "socrata-error-403-app-token.json")
    failed(parse(refused, 403, token=True), ErrorKind.NOT_CONFIGURED, retryable=False)
    failed(parse(refused, 403), ErrorKind.UPSTREAM_ERROR, retryable=False)
    failed(
        parse(example(examples_dir, "socrata-error-404.json"), 404), ErrorKind.UPSTREAM_ERROR, retryable=False
    )
    failed(parse(b"", 202), ErrorKind.UPSTREAM_ERROR, retryable=True)
    failed(parse(b"[{", 200), ErrorKind.INVALID_RESPONSE, retryable=True)
    failed(parse({"rows": []}), ErrorKind.INVALID_RESPONSE, retryable=False)
    failed(parse([insurance_row(dot_number="00000001")]), ErrorKind.INVALID_RESPONSE, retryable=False)
    failed(parse([insurance_row(effective_date="15.01.2026")]), ErrorKind.INVALID_RESPONSE, retryable=False)


def test_dates_accept_the_three_spellings_and_refuse_others() -> None:
    assert (
        parse_date("2026-01-15", "d")
        == parse_date("01/15/2026", "d")
        == parse_date("2026-01-15T00:00:00.000", "d")
    )
    assert parse_date("", "d") is None
    with pytest.raises(ValueError, match="not a date"):
        parse_date("20260115", "d")


def carrier(**statuses: AuthorityStatus | None) -> CarrierAnswer:
    return CarrierAnswer(
        statuses={t: statuses.get(t.value) for t in AuthorityType},
        bipd_required=750_000,
        bipd_on_file=1_000_000,
        cargo_on_file=0,
        bond_on_file=0,
        oos_date=date(2026, 3, 1),
        as_of=datetime(2026, 3, 10, tzinfo=UTC),
    )


def test_assembly_pending_flags_win_oos_reason_dockets_and_as_of() -> None:
    entry = AuthorityEntry(
        docket="FF7890",
        statuses={AuthorityType.COMMON: AuthorityStatus.ACTIVE},
        pending_grant=frozenset({AuthorityType.BROKER}),
        pending_revocation=frozenset({AuthorityType.COMMON}),
    )
    orders = [OosOrder(date(2021, 3, 9), "old"), OosOrder(date(2026, 3, 1), "unpaid fine")]
    rows = parse_filings(
        said("insurance", [insurance_row(trans_date="03/11/2026")], upstream="DataHub"),
        DOT,
        NOW,
        token_sent=False,
        **LIMIT,
    )
    assert isinstance(rows, list)
    fetched = assemble(DOT, carrier(common=AuthorityStatus.ACTIVE), [entry], ["MC1034412"], orders, rows, NOW)
    assert fetched.profile.common is AuthorityStatus.PENDING_REVOCATION
    assert fetched.profile.broker is AuthorityStatus.PENDING_GRANT
    assert fetched.profile.contract is None  # neither the record nor an entry said anything
    assert fetched.profile.oos_order == OosOrder(date(2026, 3, 1), "unpaid fine")
    assert [d.docket for d in fetched.dockets] == ["FF7890", "MC1034412"]
    assert fetched.upstream_as_of == datetime(2026, 3, 11, tzinfo=UTC)


def test_no_oos_date_on_the_record_means_no_order_in_force() -> None:
    answer = CarrierAnswer(
        statuses={},
        bipd_required=None,
        bipd_on_file=None,
        cargo_on_file=None,
        bond_on_file=None,
        oos_date=None,
        as_of=None,
    )
    fetched = assemble(DOT, answer, [], [], [OosOrder(date(2021, 3, 9), "old")], [], NOW)
    assert fetched.profile.oos_order is None
    assert fetched.upstream_as_of == NOW


def test_two_rows_of_one_policy_keep_the_one_effective_last() -> None:
    rows = [insurance_row(effective_date="01/01/2025", max_cov_amount="750"), insurance_row()]
    filings = parse_filings(said("insurance", rows, upstream="DataHub"), DOT, NOW, token_sent=False, **LIMIT)
    assert isinstance(filings, list)
    fetched = assemble(DOT, carrier(), [], [], [], filings, NOW)
    (kept,) = fetched.filings
    assert kept.coverage == 1_000_000


def test_the_docket_and_insurance_fixtures_parse(examples_dir: Path) -> None:
    dockets = parse_dockets(
        said("docket-numbers", example(examples_dir, "qcmobile-docket-numbers.json")), DOT, NOW, **LIMIT
    )
    assert dockets == ["MC1034412"]
    page = example(examples_dir, "datahub-insurance-page.json")
    filings = parse_filings(said("insurance", page, upstream="DataHub"), DOT, NOW, token_sent=True, **LIMIT)
    assert isinstance(filings, list)
    assert [(f.kind, f.coverage, f.cancellation) for f in filings] == [
        ("BIPD", 1_000_000, None),
        ("CARGO", 100_000, None),
        ("BIPD", 750_000, date(2024, 3, 1)),
    ]
    assert len({f.subject for f in filings}) == 3  # two BIPD policies are two filings
