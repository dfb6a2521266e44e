"""The import's size limit at full size: 100,000 rows are accepted, one more is refused whole (its own
module: at half a minute or more, the slowest integration test, and the only one that needs no view).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from fmcsa_runtime.tokens import Role


@pytest.mark.timeout(300)  # 100,000 awaited publishes on a server that fsyncs each: about a minute
async def test_an_import_of_100000_rows_is_accepted_and_one_more_is_refused(
    lone_gateway: Any, bearer: Any
) -> None:
    admin = bearer(Role.ADMIN)
    too_many = "dot_number\n" + "\n".join(str(n) for n in range(1, 100_002))
    answer = await lone_gateway.client.post(
        "/api/companies/import", content=too_many, headers={**admin, "content-type": "text/csv"}
    )
    assert answer.status_code == 422
    assert "100000" in answer.json()["detail"]
    assert await lone_gateway.events("fmcsa.evt.company_registered") == []
    rows = json.dumps([str(n) for n in range(1, 100_001)])
    started = time.monotonic()
    answer = await lone_gateway.client.post(
        "/api/companies/import", content=rows, headers={**admin, "content-type": "application/json"}
    )
    took = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 100_000
    print(f"import of 100,000 rows: {took:.1f}s")  # the figure for the report
