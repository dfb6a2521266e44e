"""The README's ten-line receiver verifies the README's test vector, and refuses it five minutes later."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[4] / "README.md"


def readme_verify() -> Any:
    text = README.read_text()
    section = text[text.index("## Alerts and webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 11
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # the README's own code, as a reader would paste it
    return namespace["verify"]


def test_the_readme_receiver_accepts_the_test_vector_and_refuses_it_when_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verify = readme_verify()
    vector = "3f26fd29ed2fcad677c7e838f63e2ba5004482461532b5c7486a4457fd7ce2d3"
    headers = {"X-Fmcsa-Signature": f"t=1767225600,v1={vector}"}
    body = b'{"id":"0123456789abcdef0123456789abcdef"}'
    monkeypatch.setattr(time, "time", lambda: 1767225600 + 60)
    assert verify(headers, body, "whsec_test_secret")
    assert not verify(headers, body + b" ", "whsec_test_secret")
    assert not verify(headers, body, "another secret")
    monkeypatch.setattr(time, "time", lambda: 1767225600 + 301)
    assert not verify(headers, body, "whsec_test_secret")
