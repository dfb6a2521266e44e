"""The README's sample receiver, run as a reader would paste it: it verifies the README's test vector
(v2), refuses it five minutes later, and answers False - never raises - for any malformed header."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[4] / "README.md"
EVENT_ID = "0123456789abcdef0123456789abcdef"
V1 = "3f26fd29ed2fcad677c7e838f63e2ba5004482461532b5c7486a4457fd7ce2d3"
V2 = "565317ac69054a240321c2676211266c12dd8de565842f7673217a9d848f926a"
BODY = b'{"id":"0123456789abcdef0123456789abcdef"}'
SECRET = "whsec_test_secret"


def readme_verify() -> Any:
    text = README.read_text()
    section = text[text.index("## Alerts and webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 14
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # the README's own code, as a reader would paste it
    return namespace["verify"]


def test_the_readme_receiver_accepts_the_test_vector_and_refuses_it_when_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verify = readme_verify()
    headers = {"X-Fmcsa-Signature": f"t=1767225600,v1={V1},v2={V2}", "X-Fmcsa-Event-Id": EVENT_ID}
    monkeypatch.setattr(time, "time", lambda: 1767225600 + 60)
    assert verify(headers, BODY, SECRET)
    assert not verify(headers, BODY + b" ", SECRET)
    assert not verify(headers, BODY, "another secret")
    assert not verify({**headers, "X-Fmcsa-Event-Id": "f" * 32}, BODY, SECRET)  # replayed under another id
    monkeypatch.setattr(time, "time", lambda: 1767225600 + 301)
    assert not verify(headers, BODY, SECRET)


MALFORMED = [
    {},  # no headers at all
    {"X-Fmcsa-Event-Id": EVENT_ID},  # no signature header
    {"X-Fmcsa-Signature": f"t=1767225600,v2={V2}"},  # no event id header
    {"X-Fmcsa-Signature": "", "X-Fmcsa-Event-Id": EVENT_ID},
    {"X-Fmcsa-Signature": "garbage", "X-Fmcsa-Event-Id": EVENT_ID},  # no '='
    {"X-Fmcsa-Signature": f"t=1767225600,{V2}", "X-Fmcsa-Event-Id": EVENT_ID},
    {"X-Fmcsa-Signature": f"v2={V2}", "X-Fmcsa-Event-Id": EVENT_ID},  # no t
    {"X-Fmcsa-Signature": "t=1767225600", "X-Fmcsa-Event-Id": EVENT_ID},  # no v2
    {"X-Fmcsa-Signature": f"t=1767225600,v1={V1}", "X-Fmcsa-Event-Id": EVENT_ID},  # v1 only: a downgrade
    {"X-Fmcsa-Signature": f"t=soon,v2={V2}", "X-Fmcsa-Event-Id": EVENT_ID},
    {"X-Fmcsa-Signature": f"t=1e9,v2={V2}", "X-Fmcsa-Event-Id": EVENT_ID},
    {"X-Fmcsa-Signature": f"t=1767225600,v2=\u00e9{V2[1:]}", "X-Fmcsa-Event-Id": EVENT_ID},  # not ASCII
    {"X-Fmcsa-Signature": f"t=1767225600,v2={V2}\x00", "X-Fmcsa-Event-Id": EVENT_ID},
    {"X-Fmcsa-Signature": f"t=1767225600,v2={V2[:-2]}", "X-Fmcsa-Event-Id": EVENT_ID},  # truncated
    {"X-Fmcsa-Signature": None, "X-Fmcsa-Event-Id": EVENT_ID},  # what some frameworks hand over
    {"X-Fmcsa-Signature": f"t=1767225600,v2={V2}", "X-Fmcsa-Event-Id": None},
    {"X-Fmcsa-Signature": f"t=99999999999999999999999,v2={V2}", "X-Fmcsa-Event-Id": EVENT_ID},
]


@pytest.mark.parametrize("headers", MALFORMED)
def test_the_readme_receiver_answers_false_for_a_malformed_header(
    headers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    verify = readme_verify()
    monkeypatch.setattr(time, "time", lambda: 1767225600 + 60)
    assert verify(headers, BODY, SECRET) is False
