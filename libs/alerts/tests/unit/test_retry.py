import pytest

from fmcsa_alerts.retry import DEFAULT_SCHEDULE_S, Delivered, GaveUp, RetryLater, settle_attempt


def settle(attempt: int, status: int | None, *, error: str | None = None, **kw: object) -> object:
    args: dict[str, object] = {
        "retry_after_s": None,
        "schedule": DEFAULT_SCHEDULE_S,
        "jitter": 0.0,
        "unit": 0.5,
        **kw,
    }
    return settle_attempt(attempt=attempt, status=status, error=error, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert settle(1, status) == Delivered(status)


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, None), (502, None), (503, None), (429, None), (408, None), (None, "timeout"), (None, "connect")],
)
def test_5xx_429_timeouts_and_refused_connections_are_retried_on_the_schedule(
    status: int | None, error: str | None
) -> None:
    delays = [settle(n, status, error=error) for n in range(1, 6)]
    assert [d.delay_s for d in delays if isinstance(d, RetryLater)] == list(DEFAULT_SCHEDULE_S)
    assert isinstance(settle(6, status, error=error), GaveUp)
    assert settle(6, status, error=error).retryable is True  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 422])
def test_other_statuses_are_not_retried(status: int) -> None:
    assert settle(1, status) == GaveUp(f"HTTP {status}", retryable=False)


def test_a_refused_address_is_not_retried() -> None:
    gave_up = settle(1, None, error="refused_address: 127.0.0.2 is a loopback address")
    assert isinstance(gave_up, GaveUp)
    assert not gave_up.retryable


def test_jitter_spreads_each_step_within_its_fraction() -> None:
    low = settle(2, 500, jitter=0.2, unit=0.0)
    high = settle(2, 500, jitter=0.2, unit=0.999999)
    assert isinstance(low, RetryLater)
    assert isinstance(high, RetryLater)
    assert low.delay_s == pytest.approx(240.0)
    assert high.delay_s == pytest.approx(360.0, rel=1e-5)


def test_retry_after_is_honoured_when_longer_and_capped_by_the_longest_step() -> None:
    assert settle(1, 429, retry_after_s=120.0).delay_s == 120.0  # type: ignore[attr-defined]
    assert settle(1, 429, retry_after_s=5.0).delay_s == 60.0  # type: ignore[attr-defined]
    assert settle(1, 429, retry_after_s=10**9).delay_s == 43200.0  # type: ignore[attr-defined]


def test_a_short_schedule_from_settings_is_used_as_given() -> None:
    schedule = (0.5, 1.0)
    assert settle(1, 500, schedule=schedule) == RetryLater(0.5, "HTTP 500")
    assert settle(2, 500, schedule=schedule) == RetryLater(1.0, "HTTP 500")
    assert isinstance(settle(3, 500, schedule=schedule), GaveUp)
