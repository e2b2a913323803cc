"""The metadata database's connection handling, shared by every table's module.

One SQLite connection per thread, WAL, ``synchronous=FULL``. Each aggregate's module is a
mixin on ``Database`` bringing its own ``schema`` and methods; ``MetadataDB`` combines them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from storage.contract import StoreUnavailableError


class MetadataConflictError(ValueError):
    """The record already exists (or, for an update, does not); the message says which."""


class Database:
    """SQLite connection per thread; each subclass declares the ``schema`` it needs."""

    schema: ClassVar[str] = ""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        ddl = "".join(
            str(cls.__dict__["schema"])
            for cls in reversed(type(self).__mro__)
            if "schema" in cls.__dict__
        )
        self._conn().executescript(ddl)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the database answers."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close this thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
