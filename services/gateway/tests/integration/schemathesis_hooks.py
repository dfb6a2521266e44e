"""schemathesis hooks of test_schemathesis.py (loaded with SCHEMATHESIS_HOOKS).

A page cursor is opaque: the `next_cursor` of a page of the same list, which no schema can generate.
Every request to a paged list that carries a cursor carries a real one of that list, read from the
seeded view (`FMCSA_FUZZ_CURSORS`: a JSON object of path to cursor). schemathesis would otherwise also
reuse one list's `next_cursor`, seen in an answer, for another list.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

CURSORS: dict[str, str] = json.loads(os.environ.get("FMCSA_FUZZ_CURSORS", "{}"))


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    cursor = CURSORS.get(case.operation.path)
    if cursor is not None and case.query and case.query.get("cursor") is not None:
        case.query["cursor"] = cursor
