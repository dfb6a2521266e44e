"""Where the live status store is, so that a rebuilt store can be swapped in while readers answer.

SQLite: the configured file (say `status.sqlite3`) is the first store. A rebuild writes a new file
beside it (`status.<generation>.sqlite3`) and then replaces the pointer file `status.sqlite3.current`
(one line: the live file's name) with rename(2), which is atomic: a reader sees the old name or the
new one, never a mix. Readers and the projector stat the pointer before each use and reopen when it
changed; a query already running finishes on the file it started on. No database file is ever
renamed or overwritten while open (SQLite's WAL files are tied to the file's name).

PostgreSQL: the store is the first schema on the connection's `search_path`. A rebuild fills a schema
beside it and renames both in one transaction (see fmcsa_status.rebuild).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import make_url

from fmcsa_runtime.database import is_sqlite

POINTER_SUFFIX = ".current"


class BadPointer(RuntimeError):
    """The pointer file names something other than a file beside it."""


@dataclass(frozen=True, slots=True)
class Location:
    """The configured database URL, and how to find the live store behind it."""

    url: str

    @property
    def sqlite(self) -> bool:
        return _parsed(self.url)[0]

    @property
    def base_path(self) -> Path:
        """The configured SQLite file (absolute)."""
        sqlite, database = _parsed(self.url)
        if not sqlite or not database:
            raise ValueError("only a SQLite URL with a file has a base path")
        return _resolved(database, "" if os.path.isabs(database) else os.getcwd())

    @property
    def pointer_path(self) -> Path:
        return _pointer(self.base_path)

    def marker(self) -> tuple[int, int] | None:
        """What changes when the pointer is swapped (inode, mtime), or None without a pointer.

        One stat(2): cheap enough to call before every query.
        """
        sqlite, database = _parsed(self.url)
        if not sqlite:
            return None
        if not database:
            raise ValueError("only a SQLite URL with a file has a base path")
        pointer = _pointer_of(database, "" if os.path.isabs(database) else os.getcwd())
        try:
            info = os.stat(pointer)
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns)

    def live_path(self) -> Path:
        """The SQLite file that is live now: the pointer's target, else the configured file."""
        pointer = self.pointer_path
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            return self.base_path
        if not name or "/" in name or name in (".", ".."):
            raise BadPointer(f"{pointer} must hold a file name beside it, got {name[:80]!r}")
        return pointer.with_name(name)

    def live_url(self) -> str:
        """The URL of the live store: for SQLite the pointer's target, for PostgreSQL the URL itself."""
        if not self.sqlite:
            return self.url
        return f"sqlite:///{self.live_path()}"


# `marker()` runs before every query of a reader: parse the URL and resolve the path once, not per query.
@lru_cache(maxsize=64)
def _parsed(url: str) -> tuple[bool, str | None]:
    return is_sqlite(url), make_url(url).database


@lru_cache(maxsize=64)
def _pointer(base: Path) -> Path:
    return base.with_name(base.name + POINTER_SUFFIX)


@lru_cache(maxsize=64)
def _pointer_of(database: str, cwd: str) -> Path:  # `pointer_path` of a file, resolved once per folder
    return _pointer(_resolved(database, cwd))


@lru_cache(maxsize=64)
def _resolved(database: str, cwd: str) -> Path:  # `cwd` keys a relative path to the folder it was in
    return Path(database).resolve()
