import pytest
from hypothesis import given
from hypothesis import strategies as st

from fmcsa_events.identifiers import InvalidDotNumber, InvalidSource, SourceKey, parse_dot, parse_source


@pytest.mark.parametrize(
    ("raw", "canonical"), [("1", "1"), ("00000123", "123"), ("12345678", "12345678"), (42, "42")]
)
def test_valid_dot_numbers_are_canonicalized(raw: object, canonical: str) -> None:
    assert parse_dot(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "123456789",
        "12a",
        " 123",
        "123\n",
        "-1",
        "1.5",
        "0",
        "00000000",
        "١٢٣",  # Arabic-Indic digits: \d would match them
        "1' OR '1'='1",
        "123&$where=1",
        "../etc",
        "12*",
        "1.2",
        None,
        True,
        1.0,
        123456789,
    ],
)
def test_anything_but_one_to_eight_ascii_digits_is_refused(raw: object) -> None:
    with pytest.raises(InvalidDotNumber):
        parse_dot(raw)


@given(st.text(max_size=12))
def test_parse_dot_accepts_only_what_the_pattern_allows(raw: str) -> None:
    ok = raw.isascii() and raw.isdigit() and 1 <= len(raw) <= 8 and int(raw) > 0
    if ok:
        assert parse_dot(raw) == str(int(raw))
    else:
        with pytest.raises(InvalidDotNumber):
            parse_dot(raw)


def test_sources_are_the_four_keys() -> None:
    assert [s.value for s in SourceKey] == ["csa", "violations", "inspections", "authority"]
    assert parse_source("csa") is SourceKey.CSA
    assert parse_source("authority") is SourceKey.AUTHORITY
    with pytest.raises(InvalidSource, match="csa, violations, inspections, authority"):
        parse_source("crashes")
