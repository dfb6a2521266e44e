"""`up`'s data folder is private to its user (issue 20): created or narrowed to 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fmcsa_cli.launcher import jwt_secret, private_folder


def test_the_data_folder_is_made_private(tmp_path: Path) -> None:
    created = private_folder(tmp_path / "new" / "data")
    assert stat.S_IMODE(os.stat(created).st_mode) == 0o700
    existing = tmp_path / "old"
    existing.mkdir()
    os.chmod(existing, 0o755)
    private_folder(existing)
    assert stat.S_IMODE(os.stat(existing).st_mode) == 0o700


def test_the_generated_jwt_secret_is_long_and_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret = jwt_secret(data, {})
    assert len(secret) >= 32  # the gateway refuses a shorter one
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "jwt-secret").st_mode) == 0o600
    assert jwt_secret(data, {}) == secret
