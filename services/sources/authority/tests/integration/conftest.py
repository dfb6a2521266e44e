"""Fixtures for the authority integration tests: clients on a real sandbox process, its admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from fmcsa_source_authority.settings import Settings
from fmcsa_source_authority.upstream import AuthorityClient

SANDBOX_KEY = "sandbox-webkey"  # the sandbox's default FMCSA_SANDBOX_QCMOBILE_WEB_KEY
SANDBOX_TOKEN = "sandbox-app-token"  # the sandbox's default FMCSA_SANDBOX_SOCRATA_APP_TOKEN


MakeClient = Callable[..., AuthorityClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Build clients against a sandbox URL; every one is closed after the test."""
    made: list[AuthorityClient] = []

    def make(url: str, **overrides: Any) -> AuthorityClient:
        settings = Settings.model_validate(
            {
                "base_url": f"{url}/qc/services",
                "datahub_base_url": url,
                "web_key": SecretStr(SANDBOX_KEY),
                "app_token": SecretStr(SANDBOX_TOKEN),
                "read_timeout_s": 5.0,
                "rate_per_s": 50.0,
                "datahub_rate_per_s": 50.0,
                **overrides,
            }
        )
        client = AuthorityClient.from_settings(settings)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
