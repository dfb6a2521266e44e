"""SQLite files are private to the service's user: folder 0700 when created, files 0600 (issue 20)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from fmcsa_runtime.database import create_engine, private_sqlite_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_a_new_sqlite_store_and_its_wal_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask: files 0644 and folders 0755 unless made private
    try:
        path = tmp_path / "data" / "service.sqlite3"
        engine = create_engine(f"sqlite:///{path}")
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        await engine.dispose()
    finally:
        os.umask(old_umask)
    assert _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    for companion in path.parent.glob("service.sqlite3-*"):  # -wal, -shm while open
        assert _mode(companion) == 0o600, companion.name


def test_an_existing_store_open_to_others_is_narrowed_and_a_given_folder_kept(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    path = folder / "status.sqlite3"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    private_sqlite_file(path)
    assert _mode(path) == 0o600
    assert _mode(folder) == 0o755  # the operator's folder: not ours to change
