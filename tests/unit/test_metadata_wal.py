"""Opening a new SQLite metadata file while another process holds it (several workers and
API processes starting together) waits instead of failing with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from storage.metadata._db import _wal


def test_switching_to_wal_waits_for_another_connection_holding_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.3, holder.rollback).start()
    opener = sqlite3.connect(path, timeout=0, isolation_level=None)

    _wal(opener)

    assert opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    opener.close()
    holder.close()
