"""Keep secrets out of logs, errors, events and stored samples.

`redact(text)` replaces the value of `webKey=` and `$$app_token=` query parameters (up to `&`, a
quote or whitespace) with `***`, and every registered secret value wherever it appears. Services
register their configured secrets at start (`register_secret`); the logging setup applies `redact`
to every rendered line, so a URL passed to a logger as an argument is scrubbed too.
"""

from __future__ import annotations

import re
import threading

_QUERY_SECRET = re.compile(r"(?i)((?:webKey|\$\$app_token|api_key|x-api-key|x-app-token)=)[^&\s\"'<>]*")
_HEADER_SECRET = re.compile(
    r"(?i)((?:x-api-key|x-app-token|authorization)['\"]?\s*[:=]\s*['\"]?(?:bearer\s+)?)[^\s'\",}]+"
)
_lock = threading.Lock()
_secrets: set[str] = set()

MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` removes it anywhere. Values under 4 characters are
    refused (masking them would garble ordinary text).
    """
    if value is None or len(value) < 4:
        return
    with _lock:
        _secrets.add(value)


def redact(text: str) -> str:
    """Return `text` without secrets; safe to call on any string, idempotent."""
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = _HEADER_SECRET.sub(lambda m: m.group(1) + MASK, text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def sample(body: bytes | str, *, limit: int = 200) -> str:
    """A short, scrubbed sample of a body for a failure's detail."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return redact(text[: limit * 2])[:limit]
