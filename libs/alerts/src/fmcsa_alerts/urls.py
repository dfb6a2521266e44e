"""How a webhook URL is read: with `httpx.URL`, the parser the notifier sends with, so a URL the gateway
accepts is exactly one the notifier can send (Python's `urlsplit` quietly drops tabs and newlines that
httpx refuses). The gateway checks a rule's URLs with `check_url` at PUT time; the notifier again before
every attempt.

Refused: whitespace, control and format characters anywhere; schemes other than http and https; no host,
a host that is neither an IP literal nor a DNS name, credentials in the URL, a port outside 1-65535.
"""

from __future__ import annotations

import httpx

from fmcsa_alerts.addresses import Target, UrlRefused, host_name_refusal, unsafe_character

MAX_URL_LENGTH = 2000


def parse_url(url: str) -> httpx.URL | UrlRefused:
    """The URL as httpx will send it, or why it is refused (see the module docstring)."""
    if len(url) > MAX_URL_LENGTH:
        return UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if reason := unsafe_character(url):
        return UrlRefused(reason)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        return UrlRefused(f"not a URL: {error}")
    scheme = parsed.scheme
    if scheme not in ("http", "https"):
        return UrlRefused(f"only http and https URLs are allowed, not {scheme or 'none'}")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        return UrlRefused("the URL has no host")
    if parsed.userinfo:
        return UrlRefused("credentials in the URL are not allowed; the secret signs the request")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return UrlRefused(f"port {parsed.port} is not 1-65535")
    if reason := host_name_refusal(host):
        return UrlRefused(reason)
    return parsed


def target_of(parsed: httpx.URL) -> Target:
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    return Target(parsed.scheme, host, parsed.port or (443 if parsed.scheme == "https" else 80))


def check_url(url: str) -> Target | UrlRefused:
    """The scheme, host (lower case, IDNA-encoded) and port of a webhook URL, or why it is refused."""
    parsed = parse_url(url)
    if isinstance(parsed, UrlRefused):
        return parsed
    return target_of(parsed)
