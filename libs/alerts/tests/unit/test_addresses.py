import pytest

from fmcsa_alerts.addresses import (
    AllowList,
    Target,
    UrlRefused,
    check_addresses,
    check_url,
    parse_allow_list,
    special_use_refusal,
)
from fmcsa_alerts.resolve import refusal_for

NONE = AllowList()

SSRF_MATRIX = [
    ("127.0.0.1", "loopback"),
    ("127.0.0.2", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "private"),
    ("224.0.0.1", "multicast"),
]


@pytest.mark.parametrize(("address", "kind"), SSRF_MATRIX)
def test_the_ssrf_matrix_is_refused_without_the_allow_list(address: str, kind: str) -> None:
    reason = check_addresses(address, [address], NONE)
    assert reason is not None
    assert kind in reason


def test_a_name_resolving_to_loopback_is_refused() -> None:
    assert check_addresses("localhost", ["127.0.0.1"], NONE) is not None
    assert check_addresses("rebind.example.com", ["127.0.0.1"], NONE) is not None


def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    assert check_addresses("mixed.example.com", ["93.184.215.14", "10.1.2.3"], NONE) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "172.32.0.1"])
def test_public_addresses_pass(address: str) -> None:
    assert check_addresses("hooks.example.com", [address], NONE) is None


def test_the_allow_list_lets_hosts_and_networks_through() -> None:
    allow = parse_allow_list(" 127.0.0.1 , 10.0.0.0/8, hooks.internal, ")
    assert check_addresses("127.0.0.1", ["127.0.0.1"], allow) is None
    assert check_addresses("svc", ["10.9.8.7"], allow) is None
    assert check_addresses("hooks.internal", [], allow) is None
    assert check_addresses("HOOKS.internal.", ["192.168.0.1"], allow) is None
    assert check_addresses("127.0.0.2", ["127.0.0.2"], allow) is not None  # /32, not the whole range
    assert check_addresses("other", ["192.168.0.1"], allow) is not None


def test_nothing_resolved_is_refused() -> None:
    assert check_addresses("nowhere.example.com", [], NONE) is not None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://x",
        "javascript:alert(1)",
        "http://",
        "https:///path",
        "http://user:pass@example.com/",
        "not a url",
        "http://example.com:99999/",
    ],
)
def test_only_http_and_https_urls_with_a_host(url: str) -> None:
    assert isinstance(check_url(url), UrlRefused)


def test_a_good_url_names_its_target() -> None:
    assert check_url("https://Hooks.Example.com/fmcsa?x=1") == Target("https", "hooks.example.com", 443)
    assert check_url("http://127.0.0.1:8123/hook") == Target("http", "127.0.0.1", 8123)
    assert check_url("http://[::1]:81/") == Target("http", "::1", 81)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "api.localhost",
        "hooks.example.com",
        "example.org",
        "x.invalid",
        "a.test",
        "printer.local",
    ],
)
def test_special_use_names_are_refused_without_resolving(host: str) -> None:
    assert special_use_refusal(host) is not None


@pytest.mark.parametrize("host", ["hooks.example.co", "notexample.com", "acme.com"])
def test_ordinary_names_are_not_special(host: str) -> None:
    assert special_use_refusal(host) is None


async def test_the_check_before_a_call_refuses_literals_and_special_names_without_dns() -> None:
    for host in ("127.0.0.2", "::1", "localhost", "hooks.example.com"):
        assert await refusal_for(Target("http", host, 80), NONE) is not None
    assert await refusal_for(Target("http", "localhost", 80), parse_allow_list("localhost")) is None
    assert await refusal_for(Target("http", "127.0.0.1", 80), parse_allow_list("127.0.0.1")) is None
