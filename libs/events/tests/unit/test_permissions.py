"""The permission map and the nats-server block rendered from it (pure; the server test is in
tests/integration/test_bus_permissions.py)."""

from __future__ import annotations

import pytest

from fmcsa_events.permissions import (
    ADMIN,
    ADMIN_ONLY,
    SERVICE_USERS,
    USERS,
    password_variable,
    render_authorization,
)


def test_every_service_user_is_denied_the_admin_calls_and_admin_is_denied_nothing() -> None:
    for user in SERVICE_USERS:
        assert set(ADMIN_ONLY) <= set(USERS[user].deny_publish), user
        assert not any(
            s.startswith(("$JS.API.STREAM.DELETE", "$JS.API.STREAM.PURGE")) for s in USERS[user].publish
        )
        assert ">" not in USERS[user].publish
    assert USERS[ADMIN].deny_publish == ()


def test_the_block_names_every_user_with_its_password_variable_and_is_the_same_each_time() -> None:
    text = render_authorization()
    assert text == render_authorization()
    for user in USERS:
        assert f'user: "{user}"' in text
        assert f"password: ${password_variable(user)}\n" in text
    assert password_variable("source-csa") == "NATS_PASSWORD_SOURCE_CSA"


def test_given_passwords_are_written_in_and_a_password_that_could_break_the_file_is_refused() -> None:
    passwords = {user: f"pw-{user}-0123456789abcdef" for user in USERS}
    text = render_authorization(passwords)
    assert all(f'password: "{p}"' in text for p in passwords.values())
    with pytest.raises(ValueError, match="16-128 URL-safe"):
        render_authorization({**passwords, "status": 'short"\n}'})
