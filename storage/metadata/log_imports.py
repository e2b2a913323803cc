"""Flight logs imported so far: one row per (drone, file content), so that uploading the
same log again stores nothing and says when it was imported (ingest/logimport.py).

A row is written only after an import finished; an import cut short leaves none, and
running it again rewrites the same samples (writes are idempotent on drone and time).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.metadata._db import Database


@dataclass(frozen=True, slots=True)
class LogImportRecord:
    """One finished import: whose drone, which content (SHA-256), what kind, when, and the
    result as the import reported it (JSON)."""

    coop: str
    drone: str
    sha256: str
    kind: str
    name: str
    imported_ms: int
    result: str


class LogImportTable(Database):
    """Finished flight-log imports, by drone and content hash."""

    schema = """
CREATE TABLE IF NOT EXISTS log_imports (
    coop        TEXT    NOT NULL,
    drone       TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    imported_ms INTEGER NOT NULL,
    result      TEXT    NOT NULL,
    PRIMARY KEY (coop, drone, sha256)
);
"""

    def log_import(self, coop: str, drone: str, sha256: str) -> LogImportRecord | None:
        """The finished import of this content for this drone, if there was one."""
        rows = self._read(
            "SELECT coop, drone, sha256, kind, name, imported_ms, result FROM log_imports"
            " WHERE coop = ? AND drone = ? AND sha256 = ?",
            (coop, drone, sha256),
        )
        if not rows:
            return None
        r = rows[0]
        return LogImportRecord(
            str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), str(r[6])
        )

    def record_log_import(self, record: LogImportRecord) -> bool:
        """Remember a finished import; False if the same content was recorded meanwhile
        (the earlier record stays)."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO log_imports (coop, drone, sha256, kind, name, imported_ms, result)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (coop, drone, sha256) DO NOTHING",
                (
                    record.coop,
                    record.drone,
                    record.sha256,
                    record.kind,
                    record.name,
                    record.imported_ms,
                    record.result,
                ),
            )
            return bool(cur.rowcount)
