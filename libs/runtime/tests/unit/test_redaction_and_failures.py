from datetime import UTC, datetime, timedelta

import pytest

from fmcsa_events.models import ErrorKind
from fmcsa_runtime.redaction import redact, register_secret, sample
from fmcsa_runtime.retry_after import parse_retry_after
from fmcsa_source_kit.failures import Failure

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_query_secrets_are_masked_wherever_they_appear() -> None:
    url = "https://mobile.fmcsa.dot.gov/qc/services/carriers/1?webKey=abc123&x=1 and ?$$app_token=tok"
    assert (
        redact(url)
        == "https://mobile.fmcsa.dot.gov/qc/services/carriers/1?webKey=***&x=1 and ?$$app_token=***"
    )
    assert redact("headers={'x-api-key': 'k-123456'}") == "headers={'x-api-key': '***'}"


def test_registered_secret_values_are_masked_anywhere() -> None:
    register_secret("sentinel-SECRET-42")
    assert redact("boom: sentinel-SECRET-42 in text") == "boom: *** in text"
    register_secret("ab")  # too short to mask safely: refused
    assert redact("abc") == "abc"


def test_sample_is_short_scrubbed_and_single_line() -> None:
    body = b"<html>\n  <title>FMCSA System Maintenance Page</title> webKey=zzz " + b"x" * 500
    text = sample(body)
    assert len(text) <= 200
    assert "\n" not in text
    assert "zzz" not in text


def test_retry_after_as_seconds_or_http_date_clamped() -> None:
    assert parse_retry_after("1", now=NOW, ceiling_s=60) == 1
    assert parse_retry_after("99999", now=NOW, ceiling_s=60) == 60
    date = (NOW + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(date, now=NOW, ceiling_s=60) == pytest.approx(30)
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT", now=NOW, ceiling_s=60) == 0
    assert parse_retry_after(None, now=NOW, ceiling_s=60) is None
    assert parse_retry_after("soon", now=NOW, ceiling_s=60) is None
    assert parse_retry_after("-5", now=NOW, ceiling_s=60) is None


def test_not_configured_cannot_be_retryable() -> None:
    with pytest.raises(ValueError, match="never retryable"):
        Failure(ErrorKind.NOT_CONFIGURED, retryable=True, message="x")


def test_bearer_tokens_are_masked() -> None:
    assert redact("Authorization: Bearer eyJhbGciOi.abc.def") == "Authorization: Bearer ***"
