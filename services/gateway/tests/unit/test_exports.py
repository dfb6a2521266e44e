"""CSV cells of the exports: the documented rules, formula injection (OWASP) neutralised."""

from __future__ import annotations

from fmcsa_gateway.exports import cell, company_table, flat_table
from fmcsa_gateway.schemas import SyncLogItem


def test_a_cell_that_a_spreadsheet_would_evaluate_is_written_as_text() -> None:
    for formula in ("=1+1", "+1", "-1+cmd", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert cell(formula) == "'" + formula
    assert cell(["=a", "b"]) == "'=a;b"
    assert cell({"note": "=x"}) == '{"note":"=x"}'  # JSON text starts with `{`: no formula
    assert cell("Acme, Inc.") == "Acme, Inc."
    assert cell(-40) == "-40"  # a number is written as it is
    assert cell(2.5) == "2.5"
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(False) == "false"


def test_nested_answers_become_columns() -> None:
    log = flat_table(SyncLogItem)
    assert "counts_fetched" in log.header
    assert "retry_next_attempt_at" in log.header
    assert "counts" not in log.header
    companies = company_table()
    assert companies.header[:2] == ["dot_number", "name"]
    assert {"csa_state", "csa_last_success_at", "csa_upstream_as_of", "authority_state"} <= set(
        companies.header
    )
    item = {"dot_number": "7", "sources": {"csa": {"state": "succeeded", "upstream_as_of": "x"}}}
    row = dict(zip(companies.header, companies.row(item), strict=True))
    assert row["csa_state"] == "succeeded"
    assert row["violations_state"] is None
