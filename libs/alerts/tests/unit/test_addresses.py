import ipaddress

import pytest

from fmcsa_alerts.addresses import (
    AllowList,
    Target,
    UrlRefused,
    address_refusal,
    check_addresses,
    parse_allow_list,
    special_use_refusal,
)
from fmcsa_alerts.resolve import refusal_for
from fmcsa_alerts.urls import check_url

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
        "http://example.com:0/",
        "http://exa%6dple.com/",
        "http://a b.com/",
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


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a\tb",  # urlsplit drops the tab; httpx refuses the URL at send time
        "http://127.0.0.1:9/a\nb",
        "http://127.0.0.1:9/a\rb",
        "\thttp://127.0.0.1:9/",
        "http://127.0.0.1:9/\x00",
        "http://127.0.0.1:9/\x7f",
        "http://127.0.0.1:9/a b",
        "http://127.0.0.1:9/a\u00a0b",  # no-break space
        "http://127.0.0.1:9/a\u200bb",  # zero-width space (a format character)
        "http://127.0.0.1:9/a\u202eb",  # right-to-left override
        "http://127.0.0.1:9/a\u2028b",  # line separator
    ],
)
def test_whitespace_and_control_characters_are_refused(url: str) -> None:
    refused = check_url(url)
    assert isinstance(refused, UrlRefused)


def test_the_url_is_read_as_httpx_sends_it() -> None:
    assert check_url("http://Hooks.Example.COM.:8080/x") == Target("http", "hooks.example.com", 8080)
    assert check_url("https://\u00f1and\u00fa.com/x") == Target("https", "xn--and-6ma2c.com", 443)
    assert check_url("http://127.0.0.1:9/a%09b") == Target("http", "127.0.0.1", 9)  # escaped: fine


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("2002:7f00:1::1", "127.0.0.1"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", "10.0.0.1"),
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("2002:c0a8:101::", "192.168.1.1"),
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known prefix
        ("64:ff9b::a00:1", "10.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo; the client is stored inverted
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("::ffff:a00:1", "10.0.0.1"),
    ],
)
def test_ipv6_forms_that_lead_to_a_refused_ipv4_address_are_refused_for_it(address: str, inner: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))
    assert reason is not None
    assert inner in reason
    assert check_addresses("hooks.example.net", [address], NONE) is not None


def test_the_local_use_nat64_prefix_is_refused_and_a_6to4_of_a_public_address_is_not() -> None:
    assert address_refusal(ipaddress.ip_address("64:ff9b:1::a00:1")) is not None
    assert address_refusal(ipaddress.ip_address("2002:5db8:d70e::1")) is None  # 6to4 of 93.184.215.14
    assert address_refusal(ipaddress.ip_address("64:ff9b::5db8:d70e")) is None  # NAT64 of the same
    assert address_refusal(ipaddress.ip_address("2002:7f00:1::1")) is not None  # 6to4 of 127.0.0.1


def test_an_allow_list_entry_with_a_port_lets_only_that_port_through() -> None:
    allow = parse_allow_list("127.0.0.1:8765, sandbox:8900, [::1]:9000, 10.0.0.0/8")
    assert check_addresses("127.0.0.1", ["127.0.0.1"], allow, port=8765) is None
    assert check_addresses("127.0.0.1", ["127.0.0.1"], allow, port=8000) is not None  # the gateway
    assert check_addresses("127.0.0.1", ["127.0.0.1"], allow) is not None  # port unknown: not allowed
    assert check_addresses("sandbox", ["172.18.0.5"], allow, port=8900) is None
    assert check_addresses("sandbox", ["172.18.0.5"], allow, port=8901) is not None
    assert check_addresses("::1", ["::1"], allow, port=9000) is None
    assert check_addresses("::1", ["::1"], allow, port=9001) is not None
    assert check_addresses("svc", ["10.1.2.3"], allow, port=1) is None  # no port: every port


def test_an_allow_list_port_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="1-65535"):
        parse_allow_list("127.0.0.1:70000")


async def test_the_check_before_a_call_honours_the_allow_list_port() -> None:
    allow = parse_allow_list("127.0.0.1:8765")
    assert await refusal_for(Target("http", "127.0.0.1", 8765), allow) is None
    assert await refusal_for(Target("http", "127.0.0.1", 8000), allow) is not None
